"""Judges: score each hypothesis against a pair's ground-truth set names.

Scores follow the paper's rubric: 1.0 (fully matches the name of set A as opposed to set B),
0.5 (partly: more true of A, but a superset or subset of the right concept), 0.0 (does not).
The ``difference`` field is never shown to a judge; only the set names are, as in the paper.

``llm``
    The paper's protocol: an OpenAI-compatible chat model answers 2, 1 or 0 per hypothesis
    (prompt ``judge``). The answer must be exactly one digit (a trailing period is allowed);
    anything else is recorded as unjudged (score ``None``) with the raw answer, never guessed.
    An empty answer (no choice, or no text) is the service's failure, as an answer that is no
    chat completion is: ``ServiceError``, never a score. Answers are cached by
    :class:`visdiff.llm.ChatClient`.
``offline``
    No API: all-MiniLM-L6-v2 sentence embeddings. See :class:`OfflineJudge`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from visdiff.cache_root import CacheRoot
from visdiff.errors import BackendError, InputError, ServiceError, excerpt
from visdiff.llm.pool import RequestPool
from visdiff.profiles import DEFAULT_JUDGE_PARAMS
from visdiff.prompts import get_prompt_set, load_prompt

RUBRIC_SCORES = {"2": 1.0, "1": 0.5, "0": 0.0}
_RUBRIC_ANSWER = re.compile(r"^\s*([012])\s*\.?\s*$")
JUDGES = ("offline", "llm")


@dataclass(frozen=True)
class Judgement:
    """One judged hypothesis: ``score`` in {0, 0.5, 1}, or None when the answer was unusable;
    ``detail`` is the raw LLM answer or the offline judge's similarities."""

    hypothesis: str
    score: float | None
    detail: str


class Judge(Protocol):
    """Scores hypotheses against the ground-truth names of set A and set B.

    A judge whose ``sends_requests`` is true (the LLM judge) only waits on a service: a
    benchmark run judges a pair in the background while it compares the next ones (see
    :mod:`visdiffbench.run`). Without it (the offline judge, which runs a model) each pair is
    judged in the calling thread.
    """

    spec: str
    sends_requests: bool = False

    def judge(self, hypotheses: Sequence[str], *, name_a: str, name_b: str) -> list[Judgement]: ...

    def describe(self) -> dict:
        """Judge name, model and settings for result records (never API keys)."""


def parse_rubric_answer(answer: str) -> float | None:
    """``"2"``/``"1"``/``"0"`` (optionally with a trailing period) -> 1.0/0.5/0.0, else None.

    >>> parse_rubric_answer(" 2\\n"), parse_rubric_answer("1."), parse_rubric_answer("Score: 2")
    (1.0, 0.5, None)
    """
    match = _RUBRIC_ANSWER.match(answer or "")
    return RUBRIC_SCORES[match.group(1)] if match else None


class LLMJudge:
    """The paper's rubric judge through any OpenAI-compatible chat endpoint.

    Parameters
    ----------
    model : str
        Chat model name, e.g. ``gpt-4o`` (the paper used GPT-4).
    base_url, api_key : str, optional
        Endpoint and key (defaults: ``$OPENAI_BASE_URL``, ``$OPENAI_API_KEY``).
    cache : CacheRoot, optional
        The run's cache root for answers; None: answers are not cached.
    prompt : str, optional
        A template file (``.txt``) with ``$name_a``, ``$name_b`` and ``$hypothesis``; default
        the ``judge`` prompt of the prompt set ``prompts`` (default ``strict``).
    params : mapping, optional
        Settings each request sends (default ``temperature=0, max_tokens=5``; empty: the
        provider's defaults, as the paper's judge). A prompt set with a ``system.txt`` sends it
        as the system message.
    llm_pool : RequestPool, optional
        The run's LLM request pool (its bound, 429 pause and usage; default: the client's own).
        The hypotheses of one call are asked concurrently, the judgements in their order.
        ``sends_requests``: a benchmark run judges a pair while it compares the next ones.
    """

    sends_requests = True

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 cache: CacheRoot | None = None, prompt: str | None = None, prompts: str | None = None,
                 params: Mapping[str, float] = DEFAULT_JUDGE_PARAMS, llm_pool: RequestPool | None = None) -> None:
        from visdiff.llm import ChatClient

        self.client = ChatClient(model, base_url=base_url, api_key=api_key, cache=cache, pool=llm_pool,
                                 stage="judging")
        self.prompt = load_prompt(prompt or "judge", prompts)
        prompt_set = get_prompt_set(prompts)
        self.system = prompt_set.load("system").text.strip() if prompt_set.has("system") else None
        self.params = dict(params)
        self.spec = f"llm:{model}"

    def describe(self) -> dict:
        return {"judge": self.spec, **self.client.describe(), **self.prompt.record(), "judge_params": self.params,
                "judge_system_message": self.system}

    def conversation(self, hypothesis: str, *, name_a: str, name_b: str) -> list[dict]:
        """The messages that ask about one hypothesis."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": self.prompt.render(name_a=name_a, name_b=name_b,
                                                                         hypothesis=hypothesis)}]

    def judge(self, hypotheses: Sequence[str], *, name_a: str, name_b: str) -> list[Judgement]:
        conversations = [self.conversation(hypothesis, name_a=name_a, name_b=name_b) for hypothesis in hypotheses]
        judgements = []
        for hypothesis, answer in zip(hypotheses, self.client.chat_many(conversations, **self.params)):
            if not answer.strip():
                # Nothing was answered: scoring it (or counting it unjudged) would read as a miss.
                raise ServiceError(f"judge LLM {self.client.model!r} at {self.client.endpoint}: empty answer "
                                   f"(no choice or no text) for hypothesis {excerpt(hypothesis)!r}")
            judgements.append(Judgement(hypothesis, parse_rubric_answer(answer), answer.strip()))
        return judgements


@dataclass(frozen=True)
class OfflineThresholds:
    """Decision thresholds of :class:`OfflineJudge` (cosine similarities).

    Fitted on ``tests/data/judge_calibration.jsonl`` (84 hypotheses, 12 pairs, rubric labels
    assigned by hand); see the README for agreement figures.
    """

    full_similarity: float = 0.40
    full_margin: float = 0.275
    partial_similarity: float = 0.20
    partial_margin: float = 0.0


# Boilerplate a proposer may put before the concept ("images of dogs" -> "dogs").
_BOILERPLATE = re.compile(
    r"^(?:(?:images?|photos?|photographs?|pictures?|shots?) (?:of|with|showing|featuring) "
    r"|(?:presence|depiction) of |contains? |showing |the |a |an )+"
)
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class OfflineJudge:
    """Rubric approximation from sentence embeddings (all-MiniLM-L6-v2), no API needed.

    How it decides, per hypothesis h (lower-cased, boilerplate such as "images of" removed):

    - ``sim_a`` = cosine(h, name of A), or cosine(h, the words of A's name that B's name lacks)
      when that is higher ("Dogs playing in a park" vs "Cats playing in a park" -> "dogs");
      ``sim_b`` likewise for B; ``margin = sim_a - sim_b``.
    - 1.0 if h is A's name or A's distinctive words; else
    - 1.0 if ``sim_a >= full_similarity`` and ``margin >= full_margin``;
      0.5 if ``sim_a >= partial_similarity`` and ``margin > partial_margin``; else 0.

    Agreement with hand-assigned rubric scores on ``tests/data/judge_calibration.jsonl`` (84
    hypotheses over 12 pairs, the data the thresholds were fitted on): 63/84 exact (0.75),
    Pearson 0.74. Where it disagrees with the rubric: paraphrases of the right concept
    ("out of focus images" for blurry, "sport utility vehicles" for SUVs) often get 0.5 instead
    of 1, and some get 0 ("monochrome photos", "lack of color" for black and white photos);
    sibling concepts, supersets of both sets and antonyms, which embed close to the answer
    ("cats" or "animals" for dogs vs birds, "bright photos" for dark photos, "wide shots" for
    close-ups), get 0.5 instead of 0; subsets ("paintings" for art) can get 1 instead of 0.5.
    Use it to compare configurations cheaply, not to quote against the paper's GPT-4 judge.
    It runs a model on the CPU: a benchmark run judges with it in the calling thread.
    """

    sends_requests = False

    def __init__(self, *, thresholds: OfflineThresholds = OfflineThresholds(), device: str = "cpu") -> None:
        self.thresholds = thresholds
        self.device = device
        self.spec = "offline:all-MiniLM-L6-v2"

    @property
    def model(self):
        """Loaded on first use (a dry run loads none): the offline scorer's loader, the packaged
        weights, never the network, one shared instance."""
        from visdiff.scorers.offline import load_sentence_model

        return load_sentence_model(self.device)

    def describe(self) -> dict:
        t = self.thresholds
        return {"judge": self.spec, "thresholds": {"full_similarity": t.full_similarity, "full_margin": t.full_margin,
                                                   "partial_similarity": t.partial_similarity, "partial_margin": t.partial_margin}}

    def similarities(self, hypotheses: Sequence[str], *, name_a: str, name_b: str) -> list[tuple[float, float]]:
        """(sim_a, sim_b) per hypothesis, as described in the class docstring."""
        a, b = normalize_phrase(name_a), normalize_phrase(name_b)
        refs_a = [a] + [t for t in [_distinct_words(a, b)] if t]
        refs_b = [b] + [t for t in [_distinct_words(b, a)] if t]
        texts = [normalize_phrase(h) for h in hypotheses]
        emb = self.model.encode(refs_a + refs_b + texts, normalize_embeddings=True, convert_to_numpy=True)
        ref_a, ref_b, hyp = emb[: len(refs_a)], emb[len(refs_a): len(refs_a) + len(refs_b)], emb[len(refs_a) + len(refs_b):]
        sim_a = (hyp @ ref_a.T).max(axis=1)
        sim_b = (hyp @ ref_b.T).max(axis=1)
        return [(float(x), float(y)) for x, y in zip(sim_a, sim_b)]

    def judge(self, hypotheses: Sequence[str], *, name_a: str, name_b: str) -> list[Judgement]:
        if not hypotheses:
            return []
        t = self.thresholds
        a, b = normalize_phrase(name_a), normalize_phrase(name_b)
        names_a = {a, _distinct_words(a, b)} - {""}
        judgements = []
        for h, (sim_a, sim_b) in zip(hypotheses, self.similarities(hypotheses, name_a=name_a, name_b=name_b)):
            margin = sim_a - sim_b
            if normalize_phrase(h) in names_a:
                score = 1.0  # names A outright, however close B's name embeds ("upside-down" vs "upright")
            elif sim_a >= t.full_similarity and margin >= t.full_margin:
                score = 1.0
            elif sim_a >= t.partial_similarity and margin > t.partial_margin:
                score = 0.5
            else:
                score = 0.0
            judgements.append(Judgement(h, score, f"sim_a={sim_a:.3f} sim_b={sim_b:.3f}"))
        return judgements


def create_judge(name: str, *, llm: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 cache: CacheRoot | None = None, prompt: str | None = None, prompts: str | None = None,
                 params: Mapping[str, float] = DEFAULT_JUDGE_PARAMS, llm_pool: RequestPool | None = None) -> Judge:
    """Build the ``offline`` judge or the ``llm`` judge (which needs ``llm``, a model name;
    ``prompt`` and ``prompts`` choose its template, ``llm_pool`` the run's pool: see :class:`LLMJudge`)."""
    if name == "offline":
        given = [flag for flag, value in (("--judge-llm", llm), ("--judge-prompt", prompt)) if value]
        if given:
            raise InputError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to the llm judge; "
                             "add --judge llm")
        return OfflineJudge()
    if name == "llm":
        if not llm:
            raise BackendError("the llm judge needs a model: --judge-llm gpt-4o (the paper used GPT-4)")
        return LLMJudge(llm, base_url=base_url, api_key=api_key, cache=cache, prompt=prompt, prompts=prompts,
                        params=params, llm_pool=llm_pool)
    raise BackendError(f"unknown judge {name!r}; choose one of: {', '.join(JUDGES)}")


def normalize_phrase(text: str) -> str:
    """Lower-case, collapse spaces, drop leading boilerplate ("images of", "presence of", "a")."""
    text = " ".join(text.lower().split())
    return _BOILERPLATE.sub("", text) or text


def _distinct_words(name: str, other: str) -> str:
    """Words of ``name`` missing from ``other``, when the names share some words; else ""."""
    words, others = _WORD.findall(name), set(_WORD.findall(other))
    distinct = [w for w in words if w not in others]
    return " ".join(distinct) if distinct and len(distinct) < len(words) else ""
