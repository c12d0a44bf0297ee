"""``visdiff serve``: a new hypothesis answered by ``GET /api/rank`` over HTTP, against the bare
``Comparison.rank`` of a new phrase in the same process.

For each N, a fresh process keeps a ``Comparison`` of 2 x N images whose 512-d embeddings are
already in the on-disk cache (filled beforehand by another process, as in ``bench_scale.py``;
``bench_interactive.py``'s text-seeded matrix scorer stands in for CLIP after the image forward
pass), serves it with a real uvicorn on a loopback port, and times, interleaved:

- ``GET /api/rank?hypothesis=<a phrase never seen>``, client to parsed JSON (httpx, one kept
  connection): text embedding, scores, exact statistics, JSON, HTTP;
- ``Comparison.rank([<another phrase never seen>])``, the same work without the server.

Each API answer is checked equal to ``Comparison.rank`` of the same phrase. Printed: median and
best of the repeats, and the ratio of the medians. **Target: the API under 100 ms at 2 x 20,000.**

    .venv/bin/python benchmarks/bench_serve.py                   # N = 20k
    .venv/bin/python benchmarks/bench_serve.py --sizes 20000 200000 --repeats 50
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bench_scale
from bench_interactive import TextSeededScorer
from bench_scale import keys_for

WARM_UP = 3


def measure(cache_dir: Path, n: int, repeats: int) -> dict:
    import httpx
    import uvicorn

    import visdiff
    from visdiff.image_sets import ImageItem, ImageSet
    from visdiff.serve import ServedComparison, create_app

    sets = [ImageSet(tuple(ImageItem(key=k, source=f"{s}{i}") for i, k in enumerate(keys_for(s, n))), name=s)
            for s in "ab"]
    comparison = visdiff.Comparison(*sets, visdiff.RunOptions(cache_dir=str(cache_dir), show_progress=False),
                                    scorer=TextSeededScorer("cpu"))
    served = ServedComparison(comparison, [], {}, can_propose=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as visdiff serve's
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(served), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    api_s, bare_s = [], []
    with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=60) as client:
        for i in range(WARM_UP + repeats):
            start = time.perf_counter()
            response = client.get("/api/rank", params={"hypothesis": f"api phrase {i}"})
            rows = response.json()["rows"]
            api = time.perf_counter() - start
            start = time.perf_counter()
            comparison.rank([f"bare phrase {i}"])
            bare = time.perf_counter() - start
            assert response.status_code == 200
            expected = comparison.rank([f"api phrase {i}"]).iloc[0]
            assert rows[0]["auroc"] == expected["auroc"] and rows[0]["p_greater"] == expected["p_greater"]
            if i >= WARM_UP:
                api_s.append(api)
                bare_s.append(bare)
    server.should_exit = True
    thread.join()
    return {"n": n, "api_median": statistics.median(api_s), "api_best": min(api_s),
            "bare_median": statistics.median(bare_s), "bare_best": min(bare_s), "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--measure", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.cache_dir, args.measure, args.repeats)))
        return

    print(f"one new hypothesis per call, {args.repeats} calls after {WARM_UP} warm-up ones, each N in a fresh "
          "process on the CPU; times in milliseconds; every API answer equals Comparison.rank's")
    print(f"{'N per set':>9} {'API median':>10} {'API best':>8} {'rank median':>11} {'rank best':>9} {'ratio':>6}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, bench_scale.__file__, "--cache-dir", tmp, "--child", "fill", str(n)],
                           check=True)
            measured = subprocess.run([sys.executable, __file__, "--cache-dir", tmp, "--measure", str(n),
                                       "--repeats", str(args.repeats)], check=True, capture_output=True, text=True)
            r = json.loads(measured.stdout)
        print(f"{n:>9} {r['api_median'] * 1e3:>10.1f} {r['api_best'] * 1e3:>8.1f} {r['bare_median'] * 1e3:>11.1f} "
              f"{r['bare_best'] * 1e3:>9.1f} {r['api_median'] / r['bare_median']:>6.2f}")


if __name__ == "__main__":
    main()
