"""``caption-llm`` scorer (the paper's caption + LLM ranker): caption each image once, then ask
a chat model whether each hypothesis is true of the image, given only its caption.

Spec ``caption-llm:CAPTIONER,LLM``, e.g. ``caption-llm:blip2:Salesforce/blip2-flan-t5-xxl,gpt-4o``.
Captions come from the run's captioning stage (cached by image content; the same captioner
as the proposer's is loaded once). Unlike the reference, which asks once per (image,
hypothesis), one request carries up to ``statements_per_call`` hypotheses as a numbered list
(prompt ``caption_llm`` of the prompt set) and the answer must be exactly that many numbered
``yes``/``no`` lines; a malformed answer is asked once more with a reminder, then reported as
a ``ServiceError``: never scored. Score: 1.0 for yes, 0.0 for no.

``reference_mode`` asks as the reference code did (the paper profile's): one request per
(caption, hypothesis) with worked examples (prompt ``caption_llm_single`` of the ``paper`` set,
whatever the run's set), at temperature 0, scored 1 when "yes" is in the answer, else 0 when
"no" is, else 0.5 and counted (:func:`visdiff.scorers.pairwise.undecided_scores`).

Pairwise scorer (see :mod:`visdiff.scorers.pairwise`): scores are cached per (image content
hash, ``cache_id``, hypothesis); ``cache_id`` names the captioner's cache id, the LLM and the
prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import numpy as np

from visdiff.cache_root import CacheRoot
from visdiff.errors import InputError, ServiceError
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.llm.pool import RequestPool
from visdiff.llm.tokens import message_tokens
from visdiff.prompts import Prompt, load_prompt
from visdiff.registry import parse_spec
from visdiff.scorers.pairwise import read_yes_no, undecided_scores

_ANSWER_LINE = re.compile(r"^\s*(\d{1,3})\s*[.):]?\s*(yes|no)\s*\.?\s*$", re.IGNORECASE)
# An answer line ("12. yes") and its line break.
ANSWER_LINE_TOKENS = 4
RETRY_NOTE = ("Your previous answer could not be used. Reply with exactly {n} lines, one per statement in order, "
              "each its number, a period and yes or no, and nothing else.")


def parse_yes_no_list(answer: str, n: int) -> list[float] | None:
    """Scores (1.0 yes, 0.0 no) of an answer holding exactly the lines ``1. yes`` ... ``n. no``
    in order (blank lines allowed), else None.

    >>> parse_yes_no_list("1. yes\\n2) No", 2), parse_yes_no_list("1. yes", 2), parse_yes_no_list("Sure!\\n1. yes", 1)
    ([1.0, 0.0], None, None)
    """
    lines = [line for line in (answer or "").splitlines() if line.strip()]
    matches = [_ANSWER_LINE.match(line) for line in lines]
    if len(lines) != n or not all(matches) or [int(m.group(1)) for m in matches] != list(range(1, n + 1)):
        return None
    return [float(m.group(2).lower() == "yes") for m in matches]


class CaptionLLMScorer:
    """Yes/no answers of a chat model about captions.

    Parameters
    ----------
    captioning : Captioning
        Captions of image sets (the run's captioning stage for the captioner of the spec).
    client : ChatClient
        Its pool bounds the requests in flight (the run's ``--llm-concurrency``).
    prompt : Prompt
        Template with ``$caption`` and ``$statements``.
    statements_per_call : int
        Hypotheses asked about in one request.
    reference_mode : bool
        One (caption, hypothesis) a request, as the reference (module docstring).
    """

    def __init__(self, captioning, client, *, prompt: Prompt, statements_per_call: int = 20,
                 reference_mode: bool = False) -> None:
        if statements_per_call < 1:
            raise ValueError(f"statements_per_call must be >= 1, got {statements_per_call}")
        self.captioning = captioning
        self.client = client
        self.reference_mode = reference_mode
        self.prompt = load_prompt("caption_llm_single", "paper") if reference_mode else prompt
        self.statements_per_call = statements_per_call
        self.spec = f"caption-llm:{captioning.spec},{client.model}"
        self._captions: dict[str, str] = {}

    @property
    def cache_id(self) -> str:
        # The captioner's own cache id names model, prompt and decoding (it loads with the captions).
        return json.dumps({"backend": "caption-llm", "captioner": self.captioning.captioner.cache_id,
                           **self.client.describe(), "prompt_sha256": self.prompt.sha256,
                           **({"one_per_call": True} if self.reference_mode else {})}, sort_keys=True)

    def prepare(self, items: Sequence[ImageItem]) -> dict[str, str]:
        """Caption every image (cached); the images that fail to decode are unusable."""
        captions, kept = self.captioning.caption_set(ImageSet(tuple(items)))
        self._captions.update(captions)
        # ``kept.skipped`` lists the dropped items in position order, as ``items`` has them.
        dropped = [item for item in items if item.key not in captions]
        return {item.key: skipped.reason for item, skipped in zip(dropped, kept.skipped, strict=True)}

    def score_pairs(self, pairs: Sequence[tuple[ImageItem, str]]) -> np.ndarray:
        missing = [item for item, _ in pairs if item.key not in self._captions]
        if missing:
            self.prepare(list({item.key: item for item in missing}.values()))
        # One question per (caption, statement): images captioned alike are asked about once, so
        # requests in flight at the same time are never the same request.
        questions: dict[str, dict[str, list[int]]] = {}
        for i, (item, statement) in enumerate(pairs):
            caption = " ".join(self._captions[item.key].split())
            questions.setdefault(caption, {}).setdefault(statement, []).append(i)
        per_call = 1 if self.reference_mode else self.statements_per_call
        calls = [(caption, statements[begin: begin + per_call])
                 for caption, statements in ((c, list(by_statement)) for c, by_statement in questions.items())
                 for begin in range(0, len(statements), per_call)]
        scores = np.empty(len(pairs))
        if self.reference_mode:
            answers = [[value] for value in undecided_scores(self.spec, self.client.pool.map(
                lambda call: self._ask_one(*call), calls))]
        else:
            answers = self.client.pool.map(lambda call: self._ask(*call), calls)
        for (caption, statements), values in zip(calls, answers, strict=True):
            for statement, value in zip(statements, values, strict=True):
                scores[questions[caption][statement]] = value
        return scores

    def planned_tokens(self, items: Sequence[ImageItem], n_texts: int, hypothesis: str,
                       caption: str) -> tuple[int, int, int]:
        """Estimated (requests, prompt tokens, completion tokens) of scoring ``items`` against
        ``n_texts`` hypotheses like ``hypothesis``, captioned like ``caption`` (a dry run's:
        every image captioned differently)."""
        if self.reference_mode:
            text = self.prompt.render(caption=caption, concept=hypothesis)
            requests = len(items) * n_texts
            return requests, requests * message_tokens([{"role": "user", "content": text}]), requests
        # The statements of one image, a request per statements_per_call of them.
        calls = [min(self.statements_per_call, n_texts - begin) for begin in range(0, n_texts, self.statements_per_call)]
        per_image = sum(message_tokens([{"role": "user", "content": self.prompt.render(
            caption=caption, statements="\n".join(f"{i}. {hypothesis}" for i in range(1, n + 1)))}]) for n in calls)
        return len(items) * len(calls), len(items) * per_image, len(items) * n_texts * ANSWER_LINE_TOKENS

    def _ask_one(self, caption: str, statements: list[str]) -> float | None:
        [concept] = statements
        text = self.prompt.render(caption=caption, concept=concept)
        return read_yes_no(self.client.chat([{"role": "user", "content": text}], temperature=0))

    def _ask(self, caption: str, statements: list[str]) -> list[float]:
        text = self.prompt.render(caption=caption,
                                  statements="\n".join(f"{i}. {s}" for i, s in enumerate(statements, 1)))
        answer = ""
        for note in ("", "\n\n" + RETRY_NOTE.format(n=len(statements))):
            answer = self.client.chat([{"role": "user", "content": text + note}], temperature=0)
            values = parse_yes_no_list(answer, len(statements))
            if values is not None:
                return values
        raise ServiceError(f"{self.spec}: LLM {self.client.model!r} at {self.client.endpoint} did not answer "
                           f"{len(statements)} numbered yes/no lines, even when asked again; answer began {answer[:200]!r}")


def split_caption_llm_spec(model: str) -> tuple[str, str]:
    """``CAPTIONER,LLM`` -> (captioner spec, LLM name); the LLM is after the last comma."""
    captioner, _, llm = model.rpartition(",")
    if not captioner.strip() or not llm.strip():
        raise InputError(f"caption-llm needs CAPTIONER,LLM, e.g. 'caption-llm:blip2:Salesforce/blip2-flan-t5-xxl,gpt-4o'; "
                         f"got {model!r}")
    return captioner.strip(), llm.strip()


def _create_caption_llm(model: str, *, device: str | None = None, cache: CacheRoot | None = None,
                        prompts: str | None = None, base_url: str | None = None,
                        captioning_for: Callable | None = None, timeout: float = 60.0, max_retries: int = 3,
                        llm_pool: RequestPool | None = None, **options) -> CaptionLLMScorer:
    from visdiff.captioning import Captioning
    from visdiff.llm import ChatClient

    captioner, llm = split_caption_llm_spec(model)
    parse_spec(captioner)
    captioning = captioning_for(captioner) if captioning_for else Captioning(
        captioner, cache=cache or CacheRoot.disabled(), device=device, base_url=base_url)
    client = ChatClient(llm, base_url=base_url, timeout=timeout, max_retries=max_retries, cache=cache, pool=llm_pool,
                        stage="ranking")
    return CaptionLLMScorer(captioning, client, prompt=load_prompt("caption_llm", prompts), **options)
