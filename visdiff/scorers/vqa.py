"""``vqa`` scorer (the paper's VQA ranker): ask a vision-language model a yes/no question per
(image, hypothesis) pair, "Does this image contain {hypothesis}?" (prompt ``vqa`` of the
prompt set), and score the pair by P(yes).

Specs:

- ``vqa:MODEL`` — a ``transformers`` model in-process (hub id or local folder): BLIP-2, LLaVA,
  or any ``AutoModelForImageTextToText`` model. P(yes) comes from the next-token logits after
  the question: the probability of the "yes" tokens over that of the "yes" and "no" tokens
  (both cases, with and without a leading space). Pairs are batched (``batch_size``).
- ``vqa:openai:MODEL`` — an OpenAI-compatible vision chat endpoint. P(yes) from the first
  answer token's ``logprobs`` where the endpoint returns them; otherwise the answer parsed as
  yes (1.0) or no (0.0). An answer that is neither is asked once more, then reported as a
  ``ServiceError``: never scored.

``answers="sampled"`` is the reference code's way instead (the paper profile's): an answer is
sampled (in-process: temperature 0.2, as the paper's LLaVA; an endpoint: its defaults) about the
hypothesis with every "and " removed, and scores 1 when "yes" is in it, else 0 when "no" is.
The reference drops an answer with neither; a table of scores needs one per pair, so it scores
0.5 (no evidence either way) and is counted in a warning.

Pairwise scorer (see :mod:`visdiff.scorers.pairwise`): scores are cached per (image content
hash, ``cache_id``, hypothesis); ``cache_id`` names model, prompt and settings.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import numpy as np
import torch

from visdiff.cache_root import CacheRoot
from visdiff.captioners.hf import (
    continuation, family_of, format_prompt, load_vision_language_model, weights_fingerprint,
)
from visdiff.devices import auto_device, auto_dtype
from visdiff.errors import BackendError, InputError, ServiceError
from visdiff.image_sets import ImageItem
from visdiff.prompts import Prompt, load_prompt
from visdiff.scorers.pairwise import read_yes_no, undecided_scores

YES_WORDS = ("yes", "Yes", " yes", " Yes")
NO_WORDS = ("no", "No", " no", " No")
_ANSWER = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
RETRY_NOTE = "Answer with one word: yes or no."
ANSWER_MODES = ("p_yes", "sampled")
# The reference's sampled answers: LLaVA's temperature, a few tokens are enough for yes or no.
SAMPLED_TEMPERATURE = 0.2
SAMPLED_MAX_TOKENS = 10


def reference_question_text(hypothesis: str) -> str:
    """The hypothesis as the reference asks about it: every "and " removed."""
    return hypothesis.replace("and ", "")


def check_images(items: Sequence[ImageItem]) -> dict[str, str]:
    """{content hash: reason} of the images that cannot be decoded."""
    failed = {}
    for item in items:
        try:
            item.open()
        except InputError as e:
            failed[item.key] = str(e)
    return failed


def _answer_tokens(tokenizer, words: Sequence[str]) -> list[int]:
    ids = set()
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if encoded and encoded[0] != tokenizer.unk_token_id:
            ids.add(encoded[0])
    return sorted(ids)


class HFVQAScorer:
    """P(yes) from a ``transformers`` vision-language model's next-token logits.

    Parameters
    ----------
    model : str
        Hub id or local folder; the family (BLIP-2, LLaVA, other) comes from its config.
    prompt : Prompt
        The question, with ``$hypothesis``.
    batch_size : int
        (image, question) pairs per forward pass.
    device, precision
        As for the captioners.
    answers : {"p_yes", "sampled"}
        P(yes) from the logits, or the reference's sampled answers (module docstring).
    """

    def __init__(self, model: str, *, prompt: Prompt, batch_size: int = 16, device: str | None = None,
                 precision: str = "auto", answers: str = "p_yes") -> None:
        if not model:
            raise InputError("the vqa scorer needs a model, e.g. 'vqa:Salesforce/blip2-flan-t5-xxl' or 'vqa:openai:gpt-4o'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if answers not in ANSWER_MODES:
            raise InputError(f"unknown vqa answers {answers!r}; choose one of: {', '.join(ANSWER_MODES)}")
        self.model_name = model
        self.prompt = prompt
        self.answers = answers
        self.batch_size = batch_size
        self.device = auto_device(device)
        self.dtype = auto_dtype(self.device, precision)
        self.spec = f"vqa:{model}"
        self.cache_id = json.dumps(
            {"backend": "vqa", "model": model, "weights": weights_fingerprint(model),
             "prompt_sha256": prompt.sha256, "dtype": str(self.dtype).removeprefix("torch."),
             # Only when sampled, so P(yes) caches keep their ids.
             **({"answers": answers, "temperature": SAMPLED_TEMPERATURE} if answers == "sampled" else {})},
            sort_keys=True,
        )
        self._loaded = None

    def _load(self):
        if self._loaded is None:
            family = family_of(self.model_name)
            processor, model = load_vision_language_model(family, self.model_name, device=self.device, dtype=self.dtype)
            tokenizer = processor.tokenizer
            yes, no = _answer_tokens(tokenizer, YES_WORDS), _answer_tokens(tokenizer, NO_WORDS)
            if not yes or not no or set(yes) & set(no):
                raise BackendError(f"{self.spec}: the tokenizer has no distinct 'yes' and 'no' tokens to read P(yes) from")
            text_config = getattr(model.config, "text_config", model.config)
            self._loaded = (family, processor, model, yes, no, bool(getattr(text_config, "is_encoder_decoder", False)))
        return self._loaded

    def prepare(self, items: Sequence[ImageItem]) -> dict[str, str]:
        return check_images(items)

    def score_pairs(self, pairs: Sequence[tuple[ImageItem, str]]) -> np.ndarray:
        scores = []
        for begin in range(0, len(pairs), self.batch_size):
            scores += self._score_batch(pairs[begin: begin + self.batch_size])
        return np.asarray(scores, dtype=np.float64)

    @torch.inference_mode()
    def _score_batch(self, pairs: Sequence[tuple[ImageItem, str]]) -> list[float]:
        family, processor, model, yes, no, encoder_decoder = self._load()
        images = {item.key: item.open() for item, _ in pairs}
        sampled = self.answers == "sampled"
        texts = [format_prompt(processor, family,
                               self.prompt.render(hypothesis=reference_question_text(text) if sampled else text),
                               question=True) for _, text in pairs]
        inputs = processor(images=[images[item.key] for item, _ in pairs], text=texts, return_tensors="pt",
                           padding=True).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        if sampled:
            return undecided_scores(self.spec, [read_yes_no(a) for a in self._sample(model, processor, inputs)]).tolist()
        if encoder_decoder:
            start = model.config.text_config.decoder_start_token_id
            inputs["decoder_input_ids"] = torch.full((len(pairs), 1), start, dtype=torch.long, device=self.device)
        logits = model(**inputs).logits[:, -1, :].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        log_yes = torch.logsumexp(log_probs[:, yes], dim=-1)
        log_no = torch.logsumexp(log_probs[:, no], dim=-1)
        return torch.sigmoid(log_yes - log_no).cpu().tolist()

    def _sample(self, model, processor, inputs) -> list[str]:
        """One sampled answer per pair (the continuation only, for decoder-only models)."""
        output = model.generate(**inputs, max_new_tokens=SAMPLED_MAX_TOKENS, do_sample=True,
                                temperature=SAMPLED_TEMPERATURE)
        return processor.batch_decode(continuation(output, inputs), skip_special_tokens=True)


def parse_yes_no(answer: str) -> float | None:
    """1.0 for an answer starting with yes, 0.0 for no, None otherwise.

    >>> parse_yes_no("Yes."), parse_yes_no(" no, it does not"), parse_yes_no("Maybe")
    (1.0, 0.0, None)
    """
    match = _ANSWER.match(answer or "")
    return None if match is None else float(match.group(1).lower() == "yes")


def p_yes_from_logprobs(response) -> float | None:
    """P(yes) over P(yes) + P(no) from the first answer token's top logprobs; None when the
    endpoint returned none, or neither word is among them."""
    choice = response.choices[0] if response.choices else None
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    mass = {"yes": 0.0, "no": 0.0}
    for candidate in content[0].top_logprobs or []:
        word = candidate.token.strip().lower()
        if word in mass:
            mass[word] += math.exp(candidate.logprob)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else None


class OpenAIVQAScorer:
    """The yes/no question to an OpenAI-compatible vision chat model, one request per pair,
    as many in flight as the client's pool allows; ``answers`` as for :class:`HFVQAScorer`
    (sampled: the endpoint's default decoding)."""

    def __init__(self, client, *, prompt: Prompt, answers: str = "p_yes") -> None:
        if answers not in ANSWER_MODES:
            raise InputError(f"unknown vqa answers {answers!r}; choose one of: {', '.join(ANSWER_MODES)}")
        self.client = client
        self.prompt = prompt
        self.answers = answers
        self.spec = f"vqa:openai:{client.model}"
        self.cache_id = json.dumps({"backend": "vqa-openai", **client.describe(), "prompt_sha256": prompt.sha256,
                                    **({"answers": answers} if answers == "sampled" else {})}, sort_keys=True)

    def prepare(self, items: Sequence[ImageItem]) -> dict[str, str]:
        return check_images(items)

    def score_pairs(self, pairs: Sequence[tuple[ImageItem, str]]) -> np.ndarray:
        if self.answers == "sampled":
            return undecided_scores(self.spec, self.client.pool.map(self._sampled_score, pairs))
        return np.asarray(self.client.pool.map(self._score, pairs), dtype=np.float64)

    def planned_tokens(self, items: Sequence[ImageItem], n_texts: int, hypothesis: str,
                       caption: str) -> tuple[int, int, int]:
        """Estimated (requests, prompt tokens, completion tokens) of asking about ``items`` and
        ``n_texts`` hypotheses like ``hypothesis`` (a dry run's; no captions)."""
        from visdiff.llm.tokens import image_sizes, message_tokens, sent_image_tokens

        del caption
        question = message_tokens([{"role": "user", "content": self.prompt.render(hypothesis=hypothesis).strip()}])
        sizes = image_sizes(items)  # an image that cannot be read is skipped: nothing asked about it
        images = sum(sent_image_tokens(width, height) for width, height in sizes)
        requests = len(sizes) * n_texts
        return requests, requests * question + n_texts * images, requests

    def _sampled_score(self, pair: tuple[ImageItem, str]) -> float | None:
        from visdiff.llm import image_content

        item, text = pair
        question = self.prompt.render(hypothesis=reference_question_text(text)).strip()
        answer, _ = self.client.complete([{"role": "user", "content": [{"type": "text", "text": question},
                                                                       image_content(item.open())]}])
        return read_yes_no(answer)

    def _score(self, pair: tuple[ImageItem, str]) -> float:
        from visdiff.llm import image_content

        item, text = pair
        question = self.prompt.render(hypothesis=text).strip()
        answer = ""
        for note in ("", f" {RETRY_NOTE}"):
            messages = [{"role": "user", "content": [{"type": "text", "text": question + note}, image_content(item.open())]}]
            answer, response = self.client.complete(messages, temperature=0, max_tokens=3, logprobs=True, top_logprobs=10)
            score = p_yes_from_logprobs(response)
            if score is None:
                score = parse_yes_no(answer)
            if score is not None:
                return score
        raise ServiceError(f"{self.spec} at {self.client.endpoint} gave no yes/no answer about {item.source} and "
                           f"{text!r}, even when asked again; answer began {answer[:120]!r}")


def _create_vqa(model: str, *, device: str | None = None, cache: CacheRoot | None = None, prompts: str | None = None,
                base_url: str | None = None, captioning_for=None, llm_pool=None, reference_mode: bool = False,
                **options):
    del cache, captioning_for  # pair scores are cached by the scoring stage; no captions needed
    prompt = load_prompt("vqa", prompts)
    options.setdefault("answers", "sampled" if reference_mode else "p_yes")
    if model.startswith("openai:"):
        from visdiff.llm import ChatClient

        del device  # runs no local model
        client = ChatClient(model.removeprefix("openai:") or "gpt-4o", base_url=base_url,
                            timeout=options.pop("timeout", 60.0), max_retries=options.pop("max_retries", 3),
                            pool=llm_pool, stage="ranking")
        return OpenAIVQAScorer(client, prompt=prompt, **options)
    return HFVQAScorer(model, prompt=prompt, device=device, **options)
