"""Generate tests/data/minibench: a tiny VisDiffBench stand-in in the release layout.

Run from the repository root: ``python tests/data/make_minibench.py``. Output is deterministic.

Layout (mirrors the real release and the upstream CSVs, with generated 24x24 PNGs):

- ``easy.jsonl``, ``hard.jsonl``: release JSONL (``set1, set2, difference, set1_images,
  set2_images``, optional ``*_url`` fields), paths relative to the folder.
- ``easy/<i>_a``, ``easy/<i>_b``, ``hard/1_a``, ``hard/1_b``: the image folders.
- ``PairedImageSets.csv``: ``group_name,path,difference,difficulty`` with upstream's
  ``./data/VisDiffBench/`` prefix and a deliberately wrong ``difficulty`` column (upstream's
  main branch mislabelled it; loaders must take the split from the folder).
- ``ImageNetR.csv`` (``path,group_name,target``, with a ``misc`` group whose files are not in
  the release) and ``ImageNetStar.csv`` (``path,group_name``), each against its base group.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent / "minibench"
SIZE = 24
PREFIX = "./data/VisDiffBench/"

# (split, index, set1, set2, difference, colour A, colour B, noise A, noise B)
PAIRS = [
    ("easy", 1, "red squares", "blue squares", "colour (red vs blue)", (200, 40, 40), (40, 40, 200), 20, 20),
    ("easy", 2, "bright images", "dark images", "brightness", (230, 230, 230), (30, 30, 30), 20, 20),
    ("hard", 1, "noisy green images", "smooth green images", "texture (noisy vs smooth)", (40, 160, 40), (40, 160, 40), 90, 5),
]
IMAGES_PER_SET = 5
STAR_GROUPS = {"in the snow": (240, 240, 250), "at night": (10, 10, 40), "base": (120, 110, 90)}
R_GROUPS = {"sketch": (200, 200, 200), "imagenet": (120, 110, 90)}


def save_png(path: Path, colour, noise: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour, float) + rng.normal(0, noise, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, optimize=True)
    return path.relative_to(OUT).as_posix()


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    jsonl: dict[str, list[dict]] = {}
    csv_rows = []
    seed = 0
    for split, index, set1, set2, difference, colour_a, colour_b, noise_a, noise_b in PAIRS:
        sides = {}
        for side, colour, noise, name in (("a", colour_a, noise_a, set1), ("b", colour_b, noise_b, set2)):
            paths = []
            for k in range(1, IMAGES_PER_SET + 1):
                seed += 1
                rel = save_png(OUT / split / f"{index}_{side}" / f"{k:06d}.png", colour, noise, seed)
                paths.append(rel)
                wrong_difficulty = "hard" if split == "easy" else "easy"
                csv_rows.append({"group_name": name, "path": PREFIX + rel, "difference": difference, "difficulty": wrong_difficulty})
            sides[side] = paths
        jsonl.setdefault(split, []).append({
            "set1": set1, "set2": set2, "difference": difference,
            "set1_images": sides["a"], "set2_images": sides["b"],
            "set1_images_url": [f"https://example.invalid/{p}" for p in sides["a"]],
            "set2_images_url": [f"https://example.invalid/{p}" for p in sides["b"]],
        })
    for split, rows in jsonl.items():
        (OUT / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with open(OUT / "PairedImageSets.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["group_name", "path", "difference", "difficulty"])
        writer.writeheader()
        writer.writerows(csv_rows)

    with open(OUT / "ImageNetStar.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group_name"])
        for group, colour in STAR_GROUPS.items():
            for k in range(3):
                seed += 1
                rel = save_png(OUT / "imagenetstar" / group.replace(" ", "_") / f"n0{k}_{k}.png", colour, 15, seed)
                writer.writerow([PREFIX + rel, group])

    with open(OUT / "ImageNetR.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group_name", "target"])
        for group, colour in R_GROUPS.items():
            for k in range(2):
                seed += 1
                rel = save_png(OUT / "imagenetr" / group / f"n0{k}_{group}_{k}.png", colour, 15, seed)
                writer.writerow([PREFIX + rel, group, "goldfish"])
        # Listed upstream but not part of the release: never evaluated, files absent.
        writer.writerow([PREFIX + "imagenetr/misc/n01_misc_0.png", "misc", "goldfish"])


if __name__ == "__main__":
    main()
