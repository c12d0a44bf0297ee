"""End-to-end benchmark runs on tests/data/minibench with the tiny random CLIP and a
fixed-hypotheses proposer: records, summaries, resume after a crash or a torn line,
skipped pairs, purity, and the ``visdiff bench`` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import visdiff
from tests.fake_openai import Reply, fake_openai  # noqa: F401
from visdiff.cli import app
from visdiff.errors import InputError
from visdiffbench import BenchConfig, Judgement, load_benchmark, read_results, run_benchmark

MINIBENCH = Path(__file__).resolve().parents[1] / "data" / "minibench"
PHRASES = ["red squares", "blue squares", "bright images", "dark images", "noisy green images", "smooth green images"]


class FixedProposer:
    """Proposes the same phrases for every pair; ``fail_on`` raises to simulate a crash."""

    spec = "fixed"

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def propose(self, context) -> list[str]:
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return list(PHRASES)

    def describe(self) -> dict:
        return {"spec": self.spec}


class ExactJudge:
    """1 for the ground-truth name of A, 0 otherwise."""

    spec = "exact"

    def judge(self, hypotheses, *, name_a, name_b):
        return [Judgement(h, 1.0 if h == name_a else 0.0, "") for h in hypotheses]

    def describe(self) -> dict:
        return {"judge": self.spec}


@pytest.fixture(scope="module")
def tiny_scorer(tiny_clip_weights):
    return visdiff.create_scorer(tiny_clip_weights, device="cpu")


# The tiny random text encoder finds the fixed phrases alike: merging would fold them together.
UNMERGED = visdiff.RunOptions(merge=False)


def run(out: Path, scorer, *, proposer=None, config: BenchConfig | None = None, bench=None, reports=False):
    config = config or BenchConfig(run=UNMERGED)
    stages = visdiff.stages.RunStages(config.run, proposer=proposer or FixedProposer(), scorer=scorer)
    return run_benchmark(bench or load_benchmark(MINIBENCH), out, config=config, judge=ExactJudge(), stages=stages,
                         reports=reports, show_progress=False)


def test_run_writes_one_record_per_pair_and_a_summary(tmp_path, tiny_scorer):
    result = run(tmp_path / "out", tiny_scorer)
    assert (result.new_pairs, result.resumed_pairs) == (3, 0)
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["pair_id"] for r in records] == ["easy-1", "easy-2", "hard-1"]
    first = records[0]
    assert first["status"] == "ok" and (first["n_a"], first["n_b"]) == (5, 5)
    assert sorted(h["hypothesis"] for h in first["hypotheses"]) == sorted(PHRASES)
    ranked = [h["hypothesis"] for h in first["hypotheses"]]
    assert [j["hypothesis"] for j in first["judged"]] == ranked[:5]
    assert first["judge_scores"] == [1.0 if h == "red squares" else 0.0 for h in ranked[:5]]
    assert first["acc@1"] == first["judge_scores"][0] and first["acc@5"] == max(first["judge_scores"])
    assert first["models"]["proposer"] == {"spec": "fixed"} and first["models"]["scorer"] == tiny_scorer.spec
    assert {"total", "judge", "propose", "embed"} <= set(first["timings"])
    assert first["versions"]["visdiff"] == visdiff.__version__ and "torch" in first["versions"]
    summary = result.summary.set_index("split")
    assert list(summary.index) == ["easy", "hard"]
    assert summary.loc["easy", "pairs"] == 2 and summary.loc["easy", "paper_acc@1"] == 0.88
    assert summary.loc["easy", "acc@1"] == pytest.approx((records[0]["acc@1"] + records[1]["acc@1"]) / 2)
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert markdown.splitlines()[0] == "# easy.jsonl, hard.jsonl: offline profile, exact judge"
    assert "\n| split | pairs | evaluated | skipped | acc@1 | acc@5 | paper_acc@1 | paper_acc@5 | unjudged |\n" in markdown
    assert "Paper columns: VisDiff (BLIP-2 captions, GPT-4 proposer" in markdown
    assert "| hard | 1 | 1 | 0 |" in markdown
    assert (tmp_path / "out" / "summary.csv").read_text().startswith("split,pairs,evaluated")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["config"]["run"]["seed"] == 0


def test_each_pair_is_diagnosed_and_misses_are_split_per_split(tmp_path, tiny_scorer):
    result = run(tmp_path / "out", tiny_scorer, config=BenchConfig(run=UNMERGED, top_k=1))
    records = {r["pair_id"]: r for r in result.records}
    for record in records.values():
        diagnosis = record["diagnosis"]
        ranked = record["hypotheses"]
        assert diagnosis["gt_phrase"] == record["name_a"] and diagnosis["n_ranked"] == len(ranked) == 6
        # The ground truth scored by the run's own scorer, placed among the ranked proposals.
        expected = visdiff.rank([record["name_a"]], *(MINIBENCH / p for p in ("easy/1_a", "easy/1_b")),
                                scorer=tiny_scorer) if record["pair_id"] == "easy-1" else None
        if expected is not None:
            assert diagnosis["gt_auroc"] == pytest.approx(expected["auroc"].iloc[0])
        assert diagnosis["gt_rank"] == 1 + sum(h["auroc"] > diagnosis["gt_auroc"] for h in ranked)
        # ExactJudge: the proposal equal to A's name matches, wherever it ranks.
        match = [i + 1 for i, h in enumerate(ranked) if h["hypothesis"] == record["name_a"]]
        assert diagnosis["matching_ranks"] == match
        assert (diagnosis["category"] == "hit") == (match == [1])
    table = result.diagnosis.set_index("split")
    assert list(table.index) == ["easy", "hard", "all"]
    assert table.loc["all", "evaluated"] == 3
    assert table.loc["all", "hits"] + table.loc["all", "misses"] == 3
    assert table.loc["all", ["never_proposed", "ranked_low", "ranker_blind"]].sum() == table.loc["all", "misses"]
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "## Misses (no full match in the top 1)" in markdown and "| split | evaluated | hits | misses |" in markdown
    assert (tmp_path / "out" / "diagnosis.csv").read_text().startswith("split,evaluated,hits,misses,never_proposed")


@pytest.mark.parametrize("gt_auroc, aurocs, scores, top_k, category, rank", [
    (0.9, [0.95, 0.8], [1.0, 0.0], 1, "hit", 2),
    (0.9, [0.95, 0.8], [0.0, 0.5], 5, "never_proposed", 2),
    (0.9, [0.95, 0.8, 0.7], [0.0, 0.0, 1.0], 2, "ranked_low", 2),
    (0.55, [0.95, 0.8], [0.0, 1.0], 1, "ranker_blind", 3),
    (0.42, [0.95], [0.0], 1, "ranker_blind", 2),
    (0.2, [0.95], [None], 1, "never_proposed", 2),
])
def test_diagnosis_categories(gt_auroc, aurocs, scores, top_k, category, rank):
    from visdiffbench import diagnose

    found = diagnose(gt_phrase="x", gt_auroc=gt_auroc, ranked_aurocs=aurocs, match_scores=scores, top_k=top_k)
    assert (found["category"], found["gt_rank"]) == (category, rank)


def test_interrupted_run_resumes_without_lost_or_duplicated_lines(tmp_path, tiny_scorer):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(out, tiny_scorer, proposer=FixedProposer(fail_on=2))  # dies during the second pair
    kept = (out / "results.jsonl").read_bytes()
    assert [json.loads(line)["pair_id"] for line in kept.splitlines()] == ["easy-1"]
    proposer = FixedProposer()
    result = run(out, tiny_scorer, proposer=proposer)
    assert (result.new_pairs, result.resumed_pairs, proposer.calls) == (2, 1, 2)
    data = (out / "results.jsonl").read_bytes()
    assert data.startswith(kept)  # what was written before the crash is untouched
    assert [json.loads(line)["pair_id"] for line in data.splitlines()] == ["easy-1", "easy-2", "hard-1"]
    again = FixedProposer()
    assert run(out, tiny_scorer, proposer=again).new_pairs == 0 and again.calls == 0
    assert (out / "results.jsonl").read_bytes() == data


def test_torn_last_line_is_cut_and_that_pair_redone(tmp_path, tiny_scorer):
    out = tmp_path / "out"
    run(out, tiny_scorer)
    lines = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    # A crash while writing the third line leaves half of it and no newline.
    (out / "results.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    assert [r["pair_id"] for r in read_results(out / "results.jsonl")] == ["easy-1", "easy-2"]
    assert (out / "results.jsonl").read_bytes() == b"".join(lines[:2])
    (out / "results.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][:10])
    proposer = FixedProposer()
    result = run(out, tiny_scorer, proposer=proposer)
    assert (result.new_pairs, proposer.calls) == (1, 1)
    ids = [json.loads(line)["pair_id"] for line in (out / "results.jsonl").read_bytes().splitlines()]
    assert ids == ["easy-1", "easy-2", "hard-1"]


def test_corrupt_middle_line_and_changed_config_are_refused(tmp_path, tiny_scorer):
    out = tmp_path / "out"
    run(out, tiny_scorer)
    with pytest.raises(InputError, match="differs in: config.purity, config.run.seed"):
        run(out, tiny_scorer, config=BenchConfig(run=UNMERGED.replace(seed=1), purity=0.5))
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text(lines[0] + "garbage\n" + lines[2])
    with pytest.raises(InputError, match=r"results.jsonl:2 is not a JSON record"):
        run(out, tiny_scorer)


def test_a_folder_made_before_a_setting_existed_resumes_at_its_default(tmp_path, tiny_scorer):
    out = tmp_path / "out"
    run(out, tiny_scorer)
    settings = json.loads((out / "run.json").read_text())
    del settings["config"]["run"]["refine"], settings["config"]["top_k"]  # as written before they existed
    (out / "run.json").write_text(json.dumps(settings))
    proposer = FixedProposer()
    assert run(out, tiny_scorer, proposer=proposer).resumed_pairs == 3 and proposer.calls == 0
    # A value other than the default is another setting (refine needs a chat proposer: top_k here).
    with pytest.raises(InputError, match=r"differs in: config\.top_k\)"):
        run(out, tiny_scorer, config=BenchConfig(run=UNMERGED, top_k=1))


def test_results_of_another_benchmark_are_not_taken_as_done(tmp_path, tiny_scorer):
    out = tmp_path / "out"
    run(out, tiny_scorer, bench=load_benchmark(MINIBENCH / "PairedImageSets.csv"))
    other = tmp_path / "easy.jsonl"
    row = json.loads((MINIBENCH / "easy.jsonl").read_text().splitlines()[0])
    other.write_text(json.dumps({**row, "set1": "crimson squares"}) + "\n")
    with pytest.raises(InputError, match="records pair easy-1 as 'red squares' vs 'blue squares'.*another --out"):
        run(out, tiny_scorer, bench=load_benchmark(other, root=MINIBENCH))


def easy_with_unreadable_images(root: Path) -> Path:
    """A copy of the mini benchmark's easy split whose pair easy-2 has a set B of files that
    are not images."""
    shutil.copytree(MINIBENCH / "easy", root / "easy")
    shutil.copy(MINIBENCH / "easy.jsonl", root / "easy.jsonl")
    for png in (root / "easy" / "2_b").glob("*.png"):
        png.write_bytes(b"not an image")
    return root


def test_pair_without_enough_readable_images_is_skipped_with_a_reason(tmp_path, tiny_scorer):
    root = easy_with_unreadable_images(tmp_path / "bench")
    (root / "easy" / "1_a" / "000002.png").unlink()
    for png in list((root / "easy" / "1_a").glob("*.png"))[1:]:
        png.unlink()
    bench = load_benchmark(root)
    assert {i.kind for i in bench.issues} == {"missing_image"}
    result = run(tmp_path / "out", tiny_scorer, bench=bench)
    records = {r["pair_id"]: r for r in result.records}
    assert records["easy-1"]["status"] == "skipped"
    assert records["easy-1"]["reason"] == "set A has 1 image file(s) on disk; at least 2 needed"
    assert records["easy-2"]["status"] == "skipped" and "readable image" in records["easy-2"]["reason"]
    assert result.summary.loc[0, "skipped"] == 2 and result.summary.loc[0, "evaluated"] == 0
    issues = (tmp_path / "out" / "data_issues.jsonl").read_text().splitlines()
    assert len(issues) == 4 and json.loads(issues[0])["kind"] == "missing_image"


def test_a_benchmark_without_its_images_is_refused_before_any_model_loads(tmp_path, monkeypatch):
    """Pointed at VisDiffBench's metadata without the image download, bench built the models,
    skipped every pair, said "3 pair(s) run" and exited 0."""
    root = tmp_path / "bench"
    root.mkdir()
    shutil.copy(MINIBENCH / "easy.jsonl", root / "easy.jsonl")

    def no_pair(self):
        raise AssertionError("a pair was started for a benchmark without images")

    monkeypatch.setattr(visdiff.stages.RunStages, "start_unit", no_pair)
    result = CliRunner().invoke(app, ["bench", str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "none of the 2 pair(s) to run has 2 image files on disk in both sets" in result.output
    assert not (tmp_path / "out" / "results.jsonl").exists() or not (tmp_path / "out" / "results.jsonl").read_text()


def test_the_last_line_counts_the_skipped_pairs_all_run_on_one_set_of_stages(tmp_path, tiny_clip_weights,
                                                                             run_stages_built):
    root = easy_with_unreadable_images(tmp_path / "bench")
    result = CliRunner().invoke(app, ["bench", str(root), "--out", str(tmp_path / "out"), "--scorer", tiny_clip_weights,
                                      "--no-merge"])
    assert result.exit_code == 0, result.output
    assert "2 pair(s) run (1 skipped: too few readable images), 0 already done" in result.output
    # One for the run: a pair (and its ground-truth AUROC) once built their own, beside the run's.
    assert len(run_stages_built) == 1


def test_purity_is_applied_and_recorded(tmp_path, tiny_scorer):
    result = run(tmp_path / "out", tiny_scorer, config=BenchConfig(run=visdiff.RunOptions(seed=4), purity=0.6))
    assert [(r["purity"], r["swapped"]) for r in result.records] == [(0.6, 2)] * 3
    assert all(r["n_a"] == 5 and r["n_b"] == 5 for r in result.records)


def test_reports_are_written_per_pair(tmp_path, tiny_scorer):
    run(tmp_path / "out", tiny_scorer, bench=load_benchmark(MINIBENCH).select(splits=["hard"]), reports=True)
    report = tmp_path / "out" / "reports" / "hard-1"
    assert (report / "report.html").is_file()
    assert json.loads((report / "results.json").read_text())["results"][0]["hypothesis"] in PHRASES


def test_bench_command_with_the_llm_judge(tmp_path, tiny_clip_weights, fake_openai):
    vocabulary = tmp_path / "words.txt"
    vocabulary.write_text("\n".join(PHRASES) + "\n")
    fake_openai.respond = lambda request: Reply("2" if "Prediction: red" in request.last_user_text else "0")
    out = tmp_path / "out"
    args = ["bench", str(MINIBENCH), "--split", "easy", "--limit", "1", "--out", str(out), "--scorer", tiny_clip_weights,
            "--proposer", f"vocabulary:{vocabulary}", "--judge", "llm", "--judge-llm", "judge-model",
            "--judge-base-url", fake_openai.base_url, "--device", "cpu", "--no-merge", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "easy" in result.output and "0.88" in result.output
    assert "misses: no full match in the top 5" in result.output
    record = json.loads((out / "results.jsonl").read_text())
    assert record["pair_id"] == "easy-1" and record["judge"]["judge"] == "llm:judge-model"
    assert record["judge_scores"] == [1.0 if h.startswith("red") else 0.0 for h in (j["hypothesis"] for j in record["judged"])]
    # Every ranked hypothesis is judged (the diagnosis needs all), the top 5 count.
    assert len(fake_openai.requests) == len(record["hypotheses"]) == 6 and len(record["judged"]) == 5
    assert CliRunner().invoke(app, args).exit_code == 0  # resumed: nothing new asked
    assert len(fake_openai.requests) == 6


def test_bench_command_reports_bad_input_with_exit_code_2(tmp_path):
    (tmp_path / "easy.jsonl").write_text("{broken\n")
    result = CliRunner().invoke(app, ["bench", str(tmp_path / "easy.jsonl"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "no usable pairs" in result.output
    result = CliRunner().invoke(app, ["bench", str(MINIBENCH), "--split", "medium", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "no split 'medium'" in result.output


# --- Judging in the background: an LLM judge on a loopback server -------------------------------

JUDGED_FIELDS = ("pair_id", "status", "hypotheses", "judged", "judge_scores", "diagnosis", "acc@1", "acc@5",
                 "llm_usage")


class SignallingProposer(FixedProposer):
    """A :class:`FixedProposer` that says when each pair's comparison has begun proposing."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.proposing = [threading.Event() for _ in range(4)]

    def propose(self, context) -> list[str]:
        self.proposing[min(self.calls, 3)].set()
        return super().propose(context)


def rubric_reply(request) -> Reply:
    """A digit that depends on the question alone, whichever order questions come in."""
    return Reply("2" if "Prediction: red squares" in request.last_user_text else "0", prompt_tokens=120,
                 completion_tokens=1)


def llm_run(out: Path, scorer, server, *, concurrency: int, proposer=None):
    from visdiffbench import LLMJudge

    options = UNMERGED.replace(llm_concurrency=concurrency)
    stages = visdiff.stages.RunStages(options, proposer=proposer or FixedProposer(), scorer=scorer)
    judge = LLMJudge("judge-model", base_url=server.base_url, api_key="x", llm_pool=stages.llm_pool)
    return run_benchmark(load_benchmark(MINIBENCH), out, config=BenchConfig(run=options), judge=judge, stages=stages,
                         show_progress=False)


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_an_llm_judge_judges_a_pair_while_the_next_is_compared_with_sequential_results(tmp_path, tiny_scorer,
                                                                                      fake_openai):
    fake_openai.respond = rubric_reply
    llm_run(tmp_path / "sequential", tiny_scorer, fake_openai, concurrency=1)
    sequential = lines(tmp_path / "sequential")
    asked_sequentially = len(fake_openai.requests)

    # Concurrent: the first pair's judge questions are answered only once the second pair's
    # comparison has reached its proposer. Judged after it (sequentially), they would wait in vain.
    proposer = SignallingProposer()
    waited = []

    def respond(request):
        if "Group A: red squares" in request.last_user_text:
            waited.append(proposer.proposing[1].wait(timeout=30))
        return rubric_reply(request)

    fake_openai.respond = respond
    fake_openai.max_in_flight = 0
    llm_run(tmp_path / "concurrent", tiny_scorer, fake_openai, concurrency=4, proposer=proposer)
    concurrent = lines(tmp_path / "concurrent")
    assert len(waited) == 6 and all(waited)  # every question of pair 1 was open while pair 2 was compared
    assert fake_openai.max_in_flight <= 4  # the pool's bound holds for the background judging too
    assert [r["pair_id"] for r in concurrent] == ["easy-1", "easy-2", "hard-1"]
    def judged(records):  # as JSON: a NaN statistic equals itself there
        return json.dumps([{k: r[k] for k in JUDGED_FIELDS} for r in records], sort_keys=True)

    assert judged(concurrent) == judged(sequential)
    assert len(fake_openai.requests) == 2 * asked_sequentially == 2 * 18
    for record in concurrent:  # each pair counts its own questions, wherever they were asked
        judged = len(record["hypotheses"])
        assert record["llm_usage"]["by_stage"] == [{"stage": "judging", "model": "judge-model", "requests": judged,
                                                    "cached": 0, "prompt_tokens": 120 * judged,
                                                    "completion_tokens": judged, "cost_usd": None}]
        assert record["models"]["llm_usage"]["by_stage"] == []  # the comparison alone made no LLM call
        assert record["judged"][0]["detail"] in {"0", "2"}


def test_a_judge_failure_stops_the_run_after_the_pairs_before_it_and_a_rerun_resumes(tmp_path, tiny_scorer,
                                                                                    fake_openai):
    from visdiff.errors import ServiceError

    def refuse_pair_2(request):
        if "Group A: bright images" in request.last_user_text:
            return Reply("refused", status=400)
        return rubric_reply(request)

    fake_openai.respond = refuse_pair_2
    out = tmp_path / "out"
    with pytest.raises(ServiceError, match="HTTP 400"):
        llm_run(out, tiny_scorer, fake_openai, concurrency=4)
    assert [r["pair_id"] for r in lines(out)] == ["easy-1"]  # pair 3 (compared, maybe judged) is not written
    fake_openai.respond = rubric_reply
    proposer = FixedProposer()
    result = llm_run(out, tiny_scorer, fake_openai, concurrency=4, proposer=proposer)
    assert (result.new_pairs, result.resumed_pairs, proposer.calls) == (2, 1, 2)
    assert [r["pair_id"] for r in lines(out)] == ["easy-1", "easy-2", "hard-1"]
    assert all(r["status"] == "ok" and r["llm_usage"]["total"]["requests"] == 6 for r in lines(out)[1:])


def test_ctrl_c_waits_for_no_judge_question_not_yet_sent(tmp_path, tiny_scorer, fake_openai):
    import threading

    released, waited = threading.Event(), []

    def respond(request):  # pair 1's questions hang until the test lets them go
        waited.append(released.wait(timeout=30))
        return rubric_reply(request)

    class InterruptedOnPair2(FixedProposer):
        def propose(self, context):
            if self.calls == 1:  # Ctrl-C once two of pair 1's questions are in flight
                for _ in range(3000):  # at most 30 s
                    if len(fake_openai.requests) >= 2 or released.wait(0.01):
                        break
                raise KeyboardInterrupt
            return super().propose(context)

    fake_openai.respond = respond
    out = tmp_path / "out"
    try:
        with pytest.raises(KeyboardInterrupt):
            llm_run(out, tiny_scorer, fake_openai, concurrency=2, proposer=InterruptedOnPair2())
        assert not waited  # raised while pair 1's questions were still unanswered
    finally:
        released.set()
    for thread in threading.enumerate():
        if thread.name.startswith(("judge", "llm")):
            thread.join(timeout=30)
    assert waited == [True, True]  # the two in flight; the four not yet sent never were
    assert len(fake_openai.requests) == 2
    assert not (out / "results.jsonl").read_text()  # pair 1 was not judged: a rerun redoes it
