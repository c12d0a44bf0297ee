"""Cold vs warm cache: the same `visdiff compare` twice on the same image sets.

Each run is a fresh Python process sharing one cache dir. The cold run starts from an
empty cache, so it loads the models, embeds every image and (for captioning profiles)
captions; the warm run should load no model, do no image forward pass and no captioning.
Interpreter start-up and `import visdiff` are timed apart from the `compare` call.

    .venv/bin/python benchmarks/bench_warm.py                      # offline profile, examples/
    .venv/bin/python benchmarks/bench_warm.py --pair cat00         # a devbench pair
    .venv/bin/python benchmarks/bench_warm.py --profile laptop     # needs its models
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVBENCH = ROOT.parent / "shared" / "data" / "devbench" / "devbench.jsonl"


def image_sets(pair: str | None) -> tuple[list[str], list[str], str]:
    if pair is None:
        return [str(ROOT / "examples" / "a")], [str(ROOT / "examples" / "b")], "examples/a vs examples/b"
    for line in DEVBENCH.read_text().splitlines():
        record = json.loads(line)
        if record["id"] == pair:
            paths = lambda key: [str(DEVBENCH.parent / p) for p in record[key]]  # noqa: E731
            return paths("set1_images"), paths("set2_images"), f"devbench {pair}: {record['set1']} vs {record['set2']}"
    raise SystemExit(f"no pair {pair!r} in {DEVBENCH}")


def child(request: dict) -> None:
    """One run in this process: time the import and the compare call, print JSON."""
    start = time.perf_counter()
    import visdiff

    imported = time.perf_counter()
    # A single folder is passed as such, a devbench set as its list of files.
    as_set = lambda paths: paths[0] if len(paths) == 1 else paths  # noqa: E731
    result = visdiff.compare(as_set(request["a"]), as_set(request["b"]), profile=request["profile"],
                             cache_dir=request["cache_dir"], show_progress=False)
    done = time.perf_counter()
    print(json.dumps({
        "import_s": imported - start, "compare_s": done - imported,
        "hypotheses": list(result.table["hypothesis"]), "n_a": result.config["n_a"], "n_b": result.config["n_b"],
        "encoded": result.config["embeddings"]["encoded"], "cached": result.config["embeddings"]["cached"],
        "captioned": result.config["captions"]["captioned"], "timings": result.timings,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="offline")
    parser.add_argument("--pair", help="devbench pair id (default: the examples/ pair)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    set_a, set_b, label = image_sets(args.pair)
    runs = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        request = json.dumps({"a": set_a, "b": set_b, "profile": args.profile, "cache_dir": cache_dir})
        for name in ("cold", "warm"):
            out = subprocess.run([sys.executable, __file__, "--child", request], check=True,
                                 capture_output=True, text=True).stdout
            runs[name] = json.loads(out.strip().splitlines()[-1])
    cold, warm = runs["cold"], runs["warm"]
    assert cold["hypotheses"] == warm["hypotheses"], "warm run ranked differently"
    print(f"pair      {label} ({cold['n_a']} + {cold['n_b']} images), profile {args.profile}")
    for name, run in runs.items():
        stages = ", ".join(f"{k} {v:.2f}" for k, v in run["timings"].items() if k != "total")
        print(f"{name:<9} compare {run['compare_s']:6.2f} s (+ import {run['import_s']:.2f} s)   "
              f"image forward passes {run['encoded']:>4}  cached {run['cached']:>4}   "
              f"captions generated {run['captioned']:>4}   [{stages}]")
    print(f"warm/cold {warm['compare_s'] / cold['compare_s']:.3f} of the compare call "
          f"(target <= 0.05; cold includes model loading); with imports "
          f"{(warm['compare_s'] + warm['import_s']) / (cold['compare_s'] + cold['import_s']):.3f}")


if __name__ == "__main__":
    main()
