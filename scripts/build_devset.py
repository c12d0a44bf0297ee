"""Build the offline profile's development set from redistributable Debian packages.

    python scripts/build_devset.py [--out devset] [--seed 0] [--debs DIR]

Downloads the packages below with ``apt-get download`` (no installation, no root needed
beyond what apt needs), unpacks them with ``dpkg -x`` into ``<out>/packages``, and writes
``<out>/pairs/<id>/{a,b}/NN.{png,jpg}`` (longest side at most 320 px; drawings keep their
alpha channel as PNG), ``<out>/devset.jsonl`` (one pair per line, in devbench's format plus
``family`` and ``half``) and ``<out>/MANIFEST.json`` (package versions and licences, and
the source file of every image). Deterministic for a given seed and package versions.

Pairs cover clipart categories, drawings against photos (line art, cartoons, scenes),
scenes (indoor/outdoor, water, nature/buildings), people against objects, text (letters,
text overlaid on photos) and synthetic transforms of photos that no threshold was ever
set on (greyscale, blur, darkening, turning upside down). ``family`` ties a pair to its
mirror (A and B swapped) and to pairs drawn from the same images; ``half`` (1 or 2)
assigns whole families to halves, alternating within each kind in sorted order, so that
a rule chosen on one half is measured on images it has not seen. The folder is ignored
by git: the images stay out of the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

MAX_SIDE = 320
MAX_IMAGES = 20

# Package -> licence of the images used (from each package's debian/copyright).
PACKAGES = {
    "openclipart-png": "public domain (Open Clip Art Library)",
    "scratch": "CC-BY-SA-3.0 (Scratch 1.4 media, MIT)",
    "mate-backgrounds": "GPL-2+ (MATE backgrounds)",
    "plasma-workspace-wallpapers": "LGPL-3 / CC-BY-SA (KDE Plasma wallpapers)",
}
CLIPART = "openclipart-png/usr/share/openclipart/png"
SCRATCH = "scratch/usr/share/scratch/Media"
MATE_NATURE = "mate-backgrounds/usr/share/backgrounds/mate/nature"
PLASMA = "plasma-workspace-wallpapers/usr/share/wallpapers"
# The Plasma wallpapers that are photographs (the rest are digital art).
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "EveningGlow", "FallenLeaf", "Grey", "OneStandsOut", "Path",
                 "summer_1am")
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

# Scratch scenes: which backgrounds are drawings, and which photos show water.
SCENE_DRAWINGS = ("bedroom1", "bedroom2", "party-room", "room1", "room2", "room3", "spotlight-stage",
                  "desert", "stars", "underwater", "woods-and-bench", "woods", "night-city-with-street",
                  "night-city", "school1", "train-tracks3", "basketball-court2", "school2")
WATER_PHOTOS = ("beach-malibu", "lake", "water-and-rocks", "wave", "city-with-water", "city-with-water2",
                "pool", "boardwalk")
# Scratch people: the cut-out photographs of real people (the others are cartoons).
PEOPLE_PHOTOS = ("amon", "anjuli", "anna", "boy4", "breakdancer", "calvrett", "cassy", "chamak", "dan",
                 "ed", "football", "jay", "jodi", "mako", "marissa", "nathan", "nina", "paul", "referee",
                 "ribbon-dancer", "sam", "thai-dancer", "boy3")


# Clipart category pairs asked one way only: (family, truth of A, truth of B, folders).
ONE_WAY_CLIPART = (
    ("clip-insects-mammals", "insects", "mammals", "animals/bugs", "animals/mammals"),
    ("clip-flowers-trees", "flowers", "trees", "plants/flowers", "plants/trees"),
    ("clip-furniture-clothing", "furniture", "clothing", "buildings/furniture", "people/clothing"),
    ("clip-music-tools", "musical instruments", "tools", "recreation/music", "tools"),
    ("clip-houses-vehicles", "houses", "vehicles", "buildings/homes", "transportation/vehicles"),
    ("clip-boats-cars", "boats", "cars", "transportation/boating", "transportation/vehicles"),
    ("clip-bigcats-horses", "big cats", "horses", "animals/mammals/big_cats", "animals/mammals/horses"),
)


@dataclass
class Pair:
    id: str
    kind: str
    family: str
    set1: str
    set2: str
    images_a: list[Image.Image] = field(repr=False)
    images_b: list[Image.Image] = field(repr=False)
    sources_a: list[str] = field(repr=False)
    sources_b: list[str] = field(repr=False)


def fetch(packages_dir: Path, debs: Path) -> dict[str, str]:
    """Download and unpack every package once; {package: version}."""
    debs.mkdir(parents=True, exist_ok=True)
    versions = {}
    for package in PACKAGES:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
            found = sorted(debs.glob(f"{package}_*.deb"))
        deb = found[-1]
        versions[package] = deb.name.split("_")[1].replace("%3a", ":")
        target = packages_dir / package
        if not target.is_dir():
            # Unpacked beside the target and renamed, so an interrupted run leaves no half package.
            partial = target.with_name(target.name + ".partial")
            partial.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg", "-x", str(deb), str(partial)], check=True)
            partial.rename(target)
    return versions


class Sources:
    """Image files of the unpacked packages, sampled with one seeded generator."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = random.Random(seed)

    def files(self, folder: str, pattern: str = "*.png", *, recursive: bool = True,
              keep: Callable[[Path], bool] = lambda p: True) -> list[Path]:
        base = self.root / folder
        found = base.rglob(pattern) if recursive else base.glob(pattern)
        return sorted(p for p in found if keep(p))

    def sample(self, files: list[Path], n: int = MAX_IMAGES) -> list[Path]:
        return sorted(self.rng.sample(files, min(n, len(files))))

    def clipart(self, *folders: str, line_art: bool = False) -> list[Path]:
        # The package ships many drawings twice: in colour and as "_bw" line art.
        files = [f for folder in folders for f in self.files(f"{CLIPART}/{folder}")
                 if f.stem.endswith("_bw") == line_art]
        return self.sample(sorted(set(files)))

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))


def load(path: Path) -> Image.Image:
    image = Image.open(path)
    image.seek(0)  # first frame of animated GIFs
    image = image.convert("RGBA") if image.mode in ("P", "PA", "LA", "RGBA") else image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def photo(path: Path) -> Image.Image:
    return load(path).convert("RGB")


def with_text(image: Image.Image, rng: random.Random) -> Image.Image:
    """A photo with two lines of large words over its middle, as on a poster or a meme."""
    words = ["SALE", "OPEN", "HELLO", "WELCOME", "NEWS", "STOP", "SUMMER", "TODAY", "FREE", "LIVE"]
    out = image.copy()
    draw = ImageDraw.Draw(out)
    font = ImageFont.truetype(str(FONT), max(14, out.width // 7))
    for row in (0.25, 0.6):
        text = " ".join(rng.sample(words, 2))
        draw.text((out.width * 0.05, out.height * row), text, font=font, fill=(255, 255, 255),
                  stroke_width=2, stroke_fill=(0, 0, 0))
    return out


def build_pairs(src: Sources) -> list[Pair]:
    pairs: list[Pair] = []

    def add(pair_id, kind, family, set1, set2, files_a, files_b, make=load, make_a=None):
        """``make`` opens an image; ``make_a`` (``make`` unless given) opens those of set A."""
        images_a = [(make_a or make)(f) for f in files_a]
        pairs.append(Pair(pair_id, kind, family, set1, set2, images_a, [make(f) for f in files_b],
                          [src.relative(f) for f in files_a], [src.relative(f) for f in files_b]))

    def both_ways(family, kind, name_a, name_b, files_a, files_b, make=load):
        add(f"{family}-ab", kind, family, name_a, name_b, files_a, files_b, make)
        add(f"{family}-ba", kind, family, name_b, name_a, files_b, files_a, make)

    # Clipart categories (openclipart folders).
    both_ways("clip-birds-fish", "clipart", "birds", "fish", src.clipart("animals/birds"), src.clipart("animals/fish"))
    both_ways("clip-fruit-vegetables", "clipart", "fruit", "vegetables", src.clipart("food/fruit"),
              src.clipart("food/vegetables"))
    both_ways("clip-dogs-cats", "clipart", "dogs", "cats", src.clipart("animals/mammals/dogs"),
              src.clipart("animals/mammals/housecats"))
    for family, set1, set2, folder_a, folder_b in ONE_WAY_CLIPART:
        add(family, "clipart", family, set1, set2, src.clipart(folder_a), src.clipart(folder_b))
    add("clip-people-tools", "people", "clip-people-tools", "people", "tools",
        src.clipart("people/stickmen", "people/smilies", "people/bodypart", "people"), src.clipart("tools"))

    # Photographs: Scratch backgrounds that are photos, MATE nature and Plasma photo wallpapers.
    backgrounds = src.files(f"{SCRATCH}/Backgrounds", "*.*")
    backgrounds = [f for f in backgrounds if f.suffix in (".jpg", ".gif", ".png") and f.parent.name != "Backgrounds"]
    scene_photos = [f for f in backgrounds if f.stem not in SCENE_DRAWINGS]
    scene_drawings = [f for f in backgrounds if f.stem in SCENE_DRAWINGS]
    indoor = [f for f in scene_photos if f.parent.name == "Indoors"]
    outdoor = [f for f in scene_photos if f.parent.name in ("Outdoors", "Nature")]
    water = [f for f in outdoor if f.stem in WATER_PHOTOS]
    land = [f for f in outdoor if f.stem not in WATER_PHOTOS]
    nature = [f for f in outdoor if f.parent.name == "Nature" and f.stem not in WATER_PHOTOS]
    built = [f for f in outdoor if f.parent.name == "Outdoors" and f.stem not in WATER_PHOTOS]
    wallpapers = src.files(MATE_NATURE, "*.jpg") + [
        src.files(f"{PLASMA}/{name}/contents/images", "*.*")[0] for name in PLASMA_PHOTOS]

    both_ways("scene-indoor-outdoor", "scene", "indoor scenes", "outdoor scenes", src.sample(indoor),
              src.sample(outdoor), photo)
    both_ways("scene-water-land", "scene", "water", "land", src.sample(water), src.sample(land, 12), photo)
    both_ways("scene-nature-buildings", "scene", "natural landscapes", "buildings", src.sample(nature),
              src.sample(built), photo)

    # Drawings against photographs, each side of similar subjects.
    both_ways("draw-scenes", "drawing", "drawings", "photographs", scene_drawings, src.sample(scene_photos, 18), photo)
    people = src.files(f"{SCRATCH}/Costumes/People", "*.*", keep=lambda p: p.suffix in (".gif", ".png"))
    people_photos = [f for f in people if any(f.stem.startswith(name) for name in PEOPLE_PHOTOS)]
    cartoons = [f for f in people if f not in people_photos]
    both_ways("draw-cartoon-people", "drawing", "cartoons", "photographs", src.sample(cartoons),
              src.sample(people_photos), load)
    # Clipart from folders no category pair uses.
    both_ways("draw-clipart-photos", "drawing", "clipart", "photographs",
              src.clipart("office", "electronics", "education", "containers", "recreation/sports"),
              src.sample(wallpapers), load)
    # Line art exists only for food drawings: against colour food drawings no category pair uses.
    line_art = src.clipart("food", line_art=True)
    colour = src.clipart("food/desserts", "food/breads_and_carbs", "food/meats_and_eggs", "food/beverages")
    both_ways("draw-line-colour", "drawing", "line drawings", "colour drawings", line_art, colour, load)

    # People against objects (Scratch costumes), and text (Scratch letters) against objects.
    things = src.files(f"{SCRATCH}/Costumes/Things", "*.*", keep=lambda p: p.suffix in (".gif", ".png"))
    animals = src.files(f"{SCRATCH}/Costumes/Animals", "*.*", keep=lambda p: p.suffix in (".gif", ".png"))
    both_ways("people-things", "people", "people", "objects", src.sample(people_photos), src.sample(things), load)
    letters = src.files(f"{SCRATCH}/Costumes/Letters", "*.gif")
    add("text-letters-animals", "text", "text-letters-animals", "letters", "animals", src.sample(letters),
        src.sample(animals), load)

    # Synthetic transforms of photographs: each photo is altered in A or kept in B, never both.
    pool = src.sample(wallpapers + outdoor, 40)
    transforms = {
        "tf-grey": ("black and white photos", lambda im: ImageOps.grayscale(im).convert("RGB")),
        "tf-blurry": ("blurry photos", lambda im: im.filter(ImageFilter.GaussianBlur(max(im.size) / 100))),
        "tf-dark": ("dark, underexposed photos", lambda im: ImageEnhance.Brightness(im).enhance(0.3)),
        "tf-upside-down": ("upside-down photos", lambda im: im.rotate(180)),
        "tf-text": ("photos with text", lambda im: with_text(im, src.rng)),
    }
    for family, (truth, transform) in transforms.items():
        order = src.rng.sample(pool, len(pool))
        files_a, files_b = sorted(order[:20]), sorted(order[20:])
        add(family, "transform", family, truth, "unaltered photos", files_a, files_b, photo,
            make_a=lambda f, t=transform: t(photo(f)))
    return pairs


def assign_halves(pairs: list[Pair]) -> dict[str, int]:
    """Whole families to halves 1 and 2, alternating within each kind in sorted order."""
    halves: dict[str, int] = {}
    for kind in sorted({p.kind for p in pairs}):
        families = sorted({p.family for p in pairs if p.kind == kind})
        for i, family in enumerate(families):
            halves[family] = 1 + i % 2
    return halves


def save(images: list[Image.Image], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / (f"{i:02d}.png" if image.mode == "RGBA" else f"{i:02d}.jpg")
        image.save(path, **({} if image.mode == "RGBA" else {"quality": 90}))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "devset")
    parser.add_argument("--debs", type=Path, default=None, help="folder of downloaded .deb files (default <out>/debs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    versions = fetch(args.out / "packages", args.debs or args.out / "debs")
    pairs = build_pairs(Sources(args.out / "packages", args.seed))
    halves = assign_halves(pairs)
    records, manifest = [], {"seed": args.seed, "packages": {
        name: {"version": versions[name], "licence": PACKAGES[name]} for name in PACKAGES}, "pairs": {}}
    for pair in pairs:
        root = args.out / "pairs" / pair.id
        paths_a, paths_b = save(pair.images_a, root / "a"), save(pair.images_b, root / "b")
        records.append({
            "id": pair.id, "kind": pair.kind, "family": pair.family, "half": halves[pair.family],
            "set1": pair.set1, "set2": pair.set2,
            "set1_images": [str(p.relative_to(args.out)) for p in paths_a],
            "set2_images": [str(p.relative_to(args.out)) for p in paths_b],
        })
        manifest["pairs"][pair.id] = {
            "sources_a": pair.sources_a, "sources_b": pair.sources_b,
            "sha256": hashlib.sha256("".join(p.read_bytes().hex() for p in paths_a + paths_b).encode()).hexdigest(),
        }
    (args.out / "devset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    counts = {k: sum(r["kind"] == k for r in records) for k in sorted({r["kind"] for r in records})}
    print(f"wrote {len(records)} pairs to {args.out / 'devset.jsonl'}: {counts}")


if __name__ == "__main__":
    main()
