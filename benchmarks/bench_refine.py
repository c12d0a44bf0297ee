"""What refinement (``--refine N``) changes, and what it costs in LLM calls, on devbench with
the offline captioner and scorer and a scripted chat model.

    .venv/bin/python benchmarks/bench_refine.py [--devbench ../shared/data/devbench]
        [--rounds 1] [--samples 5] [--refine 3]

Per pair it runs :func:`visdiff.compare` twice with the same scripted LLM, without and with
refinement (the proposal rounds are identical: same seed, same answers), and prints the best
AUROC, Acc@1 / Acc@5 (the concept matcher of ``bench_devbench_offline.py`` against set A's
name) and the LLM calls, per pair and on average, plus how many refinement rounds ran and
why they stopped.

The scripted LLM is a test of the mechanism, not of a model. It answers every request with
one fixed policy, whatever the template: it reads the captions listed under the prompt's two
caption headings (proposal: "Group A:" / "Group B:"; refinement: the A images no hypothesis
fits / the B images they wrongly fit), takes from each caption its subject ("golden
retriever"), its category ("dog", after "a kind of") and its photographic adjectives
("blurry photo"), and answers the (at most 10) phrases found in more A captions than B
captions shown, most frequent first. It never sees set names, the ground truth or images.
So refinement can only help by what it shows: the captions of the images the first
hypotheses missed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import visdiff  # noqa: E402
from bench_devbench_offline import Matcher, judge, read_pairs  # noqa: E402
from visdiff.llm import ChatStats, RequestPool  # noqa: E402
from visdiff.options import RunOptions  # noqa: E402
from visdiff.prompts import get_prompt_set  # noqa: E402
from visdiff.proposers.llm import LLMProposer  # noqa: E402
from visdiff.stages import RunStages  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The caption sections of the strict prompt set's templates: (A heading, B heading).
SECTIONS = {"propose": ("Group A:\n", "Group B:\n"),
            "refine": ("none of these concepts fits:\n", "wrongly fit:\n")}
ADJECTIVES = ("black and white", "blurry", "dark", "bright", "upside-down")
MAX_ANSWER = 10


def caption_phrases(caption: str) -> set[str]:
    """Subject, category and photographic adjectives of an offline caption."""
    phrases = set()
    kind = re.search(r"a kind of (.+)$", caption)
    if kind:
        phrases.add(kind.group(1).strip())
    subject = re.search(r"(?:photo|drawing) of (?:some kind of |an? )?([^,]+)", caption)
    if subject and subject.group(1).strip() != "something unclear":
        phrases.add(subject.group(1).strip())
    head = caption.split(" of ", 1)[0]
    phrases |= {f"{adjective} photo" for adjective in ADJECTIVES if adjective in head}
    if "drawing" in head:
        phrases.add("drawing")
    return phrases


def listed_captions(prompt: str, heading: str) -> list[str]:
    block = prompt.split(heading, 1)[1].split("\n\n", 1)[0]
    return [line[2:] for line in block.splitlines() if line.startswith("- ")]


class ScriptedChat:
    """Stands in for :class:`visdiff.llm.ChatClient`: the policy of the module docstring."""

    model = "scripted"

    def __init__(self) -> None:
        self.stats = ChatStats()
        self.pool = RequestPool(1)  # proposal rounds go through a client's pool; one at a time here
        self.calls = Counter()

    def describe(self) -> dict:
        return {"model": self.model, "base_url": None}

    def chat(self, messages: list[dict], **params) -> str:
        prompt = messages[-1]["content"]
        kind = "refine" if "AUROC" in prompt else "propose"
        self.calls[kind] += 1
        self.stats.requests += 1
        heading_a, heading_b = SECTIONS[kind]
        count_a = Counter(p for c in listed_captions(prompt, heading_a) for p in caption_phrases(c))
        count_b = Counter(p for c in listed_captions(prompt, heading_b) for p in caption_phrases(c))
        ranked = sorted((p for p in count_a if count_a[p] > count_b[p]),
                        key=lambda p: (count_b[p] - count_a[p], -count_a[p], p))
        return "\n".join(f"* {p}" for p in ranked[:MAX_ANSWER])


def run_pair(pair, *, refine: int, args, models: dict, cache_dir: Path) -> dict:
    client = ScriptedChat()
    strict = get_prompt_set("strict")
    proposer = LLMProposer(client, prompt=strict.load("propose"), retry_note=strict.load("propose_retry"),
                           rounds=args.rounds, samples_per_set=args.samples, prompt_set=strict)
    result = visdiff.compare(pair.images_a, pair.images_b, proposer=proposer, refine=refine,
                             samples_per_set=args.samples, cache_dir=cache_dir, show_progress=False, **models)
    refinements = [r for r in result.proposal_rounds if r.get("kind") == "refine"]
    return {"table": result.table, "calls": sum(client.calls.values()), "refine_calls": client.calls["refine"],
            "rounds": refinements}


def stop_reason(rounds: list[dict], refine: int) -> str:
    if not rounds:
        return "not asked (best AUROC 1 or nothing missed)"
    last = rounds[-1]
    if not last["new_phrases"]:
        return "no new phrase"
    if last["best_auroc_after"] >= 1.0:
        return "best AUROC reached 1"
    if last["best_auroc_after"] <= last["best_auroc_before"]:
        return "no improvement"
    return f"all {refine} rounds improved" if len(rounds) == refine else "nothing left to show"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devbench", type=Path, default=REPO.parent / "shared" / "data" / "devbench")
    parser.add_argument("--rounds", type=int, default=1, help="proposal rounds")
    parser.add_argument("--samples", type=int, default=5, help="images per set per round (and shown per refinement)")
    parser.add_argument("--refine", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a fresh temporary folder")
    args = parser.parse_args()
    pairs = read_pairs(args.devbench / "devbench.jsonl")
    matcher = Matcher()
    models = RunStages(RunOptions(show_progress=False)).built_models()  # offline captioner and scorer, once
    with tempfile.TemporaryDirectory() as temporary:
        cache_dir = args.cache_dir or Path(temporary)
        rows = []
        started = time.perf_counter()
        for pair in pairs:
            before = run_pair(pair, refine=0, args=args, models=models, cache_dir=cache_dir)
            after = run_pair(pair, refine=args.refine, args=args, models=models, cache_dir=cache_dir)
            outcome = {name: judge(run["table"]["hypothesis"].tolist()[:5], pair.truth, matcher)
                       for name, run in (("before", before), ("after", after))}
            rows.append({
                "pair": pair.id, "kind": pair.kind, "truth": pair.truth,
                "auroc_before": float(before["table"]["auroc"].iloc[0]),
                "auroc_after": float(after["table"]["auroc"].iloc[0]),
                "top_before": outcome["before"].top[0], "top_after": outcome["after"].top[0],
                "at1_before": outcome["before"].at1, "at1_after": outcome["after"].at1,
                "at5_before": outcome["before"].at5, "at5_after": outcome["after"].at5,
                "calls_before": before["calls"], "calls_after": after["calls"],
                "refine_rounds": len(after["rounds"]), "stop": stop_reason(after["rounds"], args.refine),
            })
        seconds = time.perf_counter() - started
    print(f"devbench, offline captioner + scorer, scripted LLM: {args.rounds} proposal round(s) of "
          f"{args.samples} + {args.samples} captions, --refine {args.refine}\n")
    print("| pair | truth | best AUROC before -> after | top-1 before -> after | Acc@1 | Acc@5 | LLM calls | refine rounds, stop |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pair']} | {r['truth']} | {r['auroc_before']:.3f} -> {r['auroc_after']:.3f} | "
              f"{r['top_before']} -> {r['top_after']} | {int(r['at1_before'])} -> {int(r['at1_after'])} | "
              f"{int(r['at5_before'])} -> {int(r['at5_after'])} | {r['calls_before']} -> {r['calls_after']} | "
              f"{r['refine_rounds']}, {r['stop']} |")
    print()
    print("| pairs | mean best AUROC | Acc@1 | Acc@5 | LLM calls per pair |")
    print("|---|---|---|---|---|")
    for kind in ("category", "transform", None):
        chosen = [r for r in rows if kind is None or r["kind"] == kind]
        label = f"{kind} ({len(chosen)})" if kind else f"all ({len(chosen)})"

        def mean(key: str) -> float:
            return float(np.mean([r[key] for r in chosen]))

        print(f"| {label} | {mean('auroc_before'):.3f} -> {mean('auroc_after'):.3f} | "
              f"{mean('at1_before'):.2f} -> {mean('at1_after'):.2f} | {mean('at5_before'):.2f} -> {mean('at5_after'):.2f} | "
              f"{mean('calls_before'):.2f} -> {mean('calls_after'):.2f} |")
    improved = sum(r["auroc_after"] > r["auroc_before"] for r in rows)
    print(f"\nbest AUROC higher after refinement on {improved} of {len(rows)} pairs; "
          f"stops: {dict(Counter(r['stop'] for r in rows))}; {seconds:.1f} s for both runs of every pair")


if __name__ == "__main__":
    main()
