"""Shared machinery of the proposers that ask a chat model: answer parsing and rounds.

A real model's list comes wrapped in bullets, numbers, bold, quotes, preambles ("Here are ten
differences:") and explanations ("**Snow**: group A shows winter"). :func:`parse_hypotheses`
keeps only the phrases. :class:`ChatProposer` runs the rounds: each round samples images,
asks once, asks again with a reminder when nothing usable came back, and merges the phrases
of all rounds without duplicates. A round that stays unusable is logged; when every round
does, it raises ``ServiceError``: an unusable answer is never ranked as a hypothesis.
:meth:`ChatProposer.refine` asks one refinement request the same way (:mod:`visdiff.refine`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict, dataclass

import numpy as np

from visdiff.errors import ServiceError
from visdiff.cache_root import CacheRoot
from visdiff.image_sets import ImageSet
from visdiff.llm import ChatClient, ChatStats, RequestPool
from visdiff.progress import progress_bar
from visdiff.ranking import dedupe_phrases
from visdiff.prompts import Prompt, PromptSet, get_prompt_set
from visdiff.proposers import ProposalContext

log = logging.getLogger(__name__)

MAX_WORDS = 12
_FENCE = re.compile(r"^\s*```")
_HEADING = re.compile(r"^\s*#+\s")
# "-", "*", "•", "1.", "2)", "(3)", "a)" followed by space: a list item.
_MARKER = re.compile(r"^\s*(?:[-*+•●▪‣◦·–—]|\(?\d{1,3}[.):\]]|\(?[a-zA-Z][.)])\s+")
_EMPHASIS = re.compile(r"(\*\*|__|`|\*|(?<!\w)_|_(?!\w))")
# "label: explanation", "label - explanation": keep the label.
_LABEL = re.compile(r"^(?P<label>[^:]{1,80}?)\s*(?::\s|\s[-–—]\s)")
_PARENTHESES = re.compile(r"\s*[(\[][^)\]]*[)\]]")
_EXAMPLES_TAIL = re.compile(r",?\s*\b(?:such as\b|including\b|e\.g\.|i\.e\.).*$", re.IGNORECASE)
_BANNED_PREFIX = re.compile(
    r"^(?:(?:a |the )?(?:presence of|more of|more|images (?:with|of|showing)|"
    r"photos (?:with|of|showing)|pictures (?:with|of|showing))\s+)+",
    re.IGNORECASE,
)
# Prose around a list, opening and closing courtesies included.
_PROSE = re.compile(
    r"^(?:here (?:are|is)|sure\b|certainly|okay\b|ok\b|i\b|i'm|i am|sorry|unfortunately|as an ai|"
    r"note\b|these\b|the following|based on|overall\b|in summary|hope (?:this|that|it) helps|let me know|"
    r"feel free|happy to help|glad to help|good luck|thanks?\b|thank you|you're welcome|best regards|cheers\b|"
    r"enjoy\b|have a (?:great|nice|good))",
    re.IGNORECASE,
)
# Negations and comparisons a CLIP scorer cannot score as an image property.
_UNSCORABLE = re.compile(r"^(?:fewer|less|no|absence of|lack of|without)\b|\bgroup [ab]\b|\bcaptions?\b", re.IGNORECASE)
# An endpoint's or proxy's error text relayed as the answer ("4. Error: rate limit exceeded").
_ERROR_TEXT = re.compile(
    r"^(?:error|exception|traceback|fatal|failed|failure)\b|\brate.?limit|\bquota\b|"
    r"\b(?:status|error) code\b|\bhttp(?:/\d(?:\.\d)?)? ?[45]\d\d\b|"
    r"\b(?:internal server error|bad gateway|service unavailable|gateway time-?out|too many requests|"
    r"invalid (?:request|api key)|timed out)\b",
    re.IGNORECASE,
)
# HTML or XML markup: a page or a fragment, never an image property.
_MARKUP = re.compile(r"</?[a-zA-Z][\w:-]*(?:\s[^<>]*)?/?>|<!--|<!doctype|&(?:lt|gt|amp|nbsp|quot);", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_STRIP = " \t\"'“”‘’`.,;:!*_"


@dataclass(frozen=True)
class ParsedAnswer:
    """What parsing kept of a chat answer (``phrases``, in order, without duplicates) and every
    line it dropped, with the reason (``dropped``: (line, reason) pairs)."""

    phrases: list[str]
    dropped: list[tuple[str, str]]


def _clean_item(text: str) -> str:
    text = _EMPHASIS.sub("", text).strip()
    label = _LABEL.match(text)
    if label and len(label["label"].split()) <= 8:
        text = label["label"]
    text = _EXAMPLES_TAIL.sub("", _PARENTHESES.sub("", text))
    text = _BANNED_PREFIX.sub("", text.strip(_STRIP)).strip(_STRIP)
    return " ".join(text.split())


def _rejection(raw: str, item: str) -> str:
    """Why a list item is not a hypothesis ('' if it is one). ``raw`` is the line as sent, so
    an error message is caught before its label ("Error") could pass for a phrase."""
    if _ERROR_TEXT.search(raw):
        return "error message, not a hypothesis"
    if _MARKUP.search(raw):
        return "markup, not a hypothesis"
    if _PROSE.match(item):
        return "prose, not a hypothesis"
    if not _LETTER.search(item):
        return "no words"
    if len(item.split()) > MAX_WORDS:
        return f"longer than {MAX_WORDS} words"
    if _UNSCORABLE.search(item):
        return "negation or comparison a scorer cannot score"
    return ""


def parse_answer(answer: str) -> ParsedAnswer:
    """The phrases of a chat model's list answer, and the lines dropped with reasons.

    When any line is a list item (bullet or number), only list items count, so preambles and
    closing remarks drop out. A single unmarked line with commas is read as a comma list.
    Error messages, markup, courtesies and prose never become phrases.
    """
    dropped: list[tuple[str, str]] = []
    lines = []
    for line in answer.splitlines():
        if _FENCE.match(line) or _HEADING.match(line):
            dropped.append((line, "formatting"))
        elif line.strip():
            lines.append(line)
    marked = any(_MARKER.match(line) for line in lines)
    raw = []
    for line in lines:
        if marked and not _MARKER.match(line):
            dropped.append((line, "not a list item"))
        elif not marked and line.rstrip().endswith(":"):
            dropped.append((line, "heading"))
        else:
            raw.append(_MARKER.sub("", line, count=1) if marked else line)
    if not marked and len(raw) == 1 and raw[0].count(",") >= 2:
        raw = re.split(r"[,;]", raw[0])
    kept = []
    for text in raw:
        item = _clean_item(text)
        reason = _rejection(text, item)
        if reason:
            dropped.append((text.strip(), reason))
        else:
            kept.append(item)
    phrases = dedupe_phrases(kept)
    seen = {p.lower() for p in phrases}
    for item in kept:
        if " ".join(item.split()).lower() in seen:
            seen.discard(" ".join(item.split()).lower())
        else:
            dropped.append((item, "duplicate"))
    return ParsedAnswer(phrases, dropped)


def parse_hypotheses(answer: str) -> list[str]:
    """The phrases of a chat model's list answer (see :func:`parse_answer`).

    >>> parse_hypotheses('Here are the differences:\\n\\n1. **Snowy scenes**: winter\\n2. "red cars"\\n- more of dogs (e.g. pugs)')
    ['Snowy scenes', 'red cars', 'dogs']
    """
    return parse_answer(answer).phrases


def sample_positions(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """``min(n, k)`` distinct positions out of ``range(n)``, in sampled order."""
    return rng.choice(n, size=min(n, k), replace=False).tolist()


def sampled_images(sample: ImageSet) -> list[dict]:
    """Content hash and source of each image of a round's sample, for the round's record."""
    return [{"key": item.key, "source": item.source} for item in sample.items]


def caption_lines(captions: dict[str, str]) -> str:
    """One line per caption, whatever the captioner emitted."""
    return "\n".join(f"- {' '.join(caption.split())}" for caption in captions.values())


def _with_note(messages: list[dict], note: str) -> list[dict]:
    """``messages`` with ``note`` appended to the last user turn (keeps turns alternating,
    which some chat templates require)."""
    last = dict(messages[-1])
    if isinstance(last["content"], str):
        last["content"] = f"{last['content']}\n\n{note}"
    else:
        last["content"] = [*last["content"], {"type": "text", "text": note}]
    return [*messages[:-1], last]


def _shown_text(messages: list[dict]) -> list[dict]:
    """``messages`` as recorded: text kept exactly, images replaced by a note (a base64 grid
    would bloat results without helping anyone read them)."""
    def part(p: dict) -> dict:
        return p if p.get("type") == "text" else {"type": p.get("type", ""), "note": "image omitted from the record"}

    return [{**m, "content": m["content"] if isinstance(m["content"], str) else [part(p) for p in m["content"]]}
            for m in messages]


class ChatProposer:
    """Rounds of chat requests that each return a list of phrases; subclasses build the messages.

    Parameters
    ----------
    client : ChatClient
    prompt : Prompt
        Template for one round (fields depend on the subclass; ``$n_hypotheses`` always).
    retry_note : Prompt
        Appended to the request when an answer held no usable phrase.
    rounds : int
        Chat requests, each on a fresh sample of images.
    samples_per_set : int
        Images sampled from A and from B per round.
    n_hypotheses : int
        Phrases asked for per round.
    temperature, max_tokens : float, int or None
        Sent with every request; None sends none (the provider's default).
    send_seed : bool
        Send a seed per round (``seed * 1000 + round``).
    system : Prompt, optional
        System message of every request; None sends none.
    prompt_set : PromptSet, optional
        Where the templates of other requests come from (``propose_paired``, ``refine``).
    goal : Prompt, optional
        The researcher's question (template ``goal`` of the prompt set, filled), added to the
        user turn of every round and refinement request; None: the prompts as they are.

    Every round is recorded in the context's ``rounds`` (see :meth:`propose`).
    """

    backend = ""

    def __init__(
        self,
        client: ChatClient,
        *,
        prompt: Prompt,
        retry_note: Prompt,
        rounds: int,
        samples_per_set: int,
        n_hypotheses: int = 10,
        temperature: float | None = 0.7,
        max_tokens: int | None = 512,
        send_seed: bool = True,
        system: Prompt | None = None,
        prompt_set: PromptSet | None = None,
        goal: Prompt | None = None,
    ) -> None:
        if rounds < 1 or samples_per_set < 1 or n_hypotheses < 1:
            raise ValueError(
                f"rounds, samples_per_set and n_hypotheses must be >= 1, got {rounds}, {samples_per_set}, {n_hypotheses}"
            )
        self.client = client
        self.prompt = prompt
        self.retry_note = retry_note
        self.rounds = rounds
        self.samples_per_set = samples_per_set
        self.n_hypotheses = n_hypotheses
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.send_seed = send_seed
        self.system = system
        self.prompt_set = prompt_set
        self.goal = goal
        self.spec = f"{self.backend}:{client.model}"

    @classmethod
    def create(
        cls,
        model: str,
        *,
        prompt: str,
        samples_per_set: int,
        prompts: str | None = None,
        rounds: int = 3,
        n_hypotheses: int = 10,
        temperature: float | None = 0.7,
        max_tokens: int | None = 512,
        send_seed: bool = True,
        system_message: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        cache: CacheRoot | None = None,
        llm_pool: RequestPool | None = None,
        goal: str | None = None,
    ):
        """Build with its own :class:`ChatClient` (``base_url`` ... ``llm_pool`` go to the client).

        ``prompt`` names the round's template in the prompt set ``prompts`` (default
        ``strict``); ``system_message`` None takes the set's ``system.txt`` if it has one,
        ``""`` sends none, any other text is sent as it is; ``goal``, the researcher's question,
        fills the set's ``goal.txt``.
        """
        prompt_set = get_prompt_set(prompts)
        if system_message is None:
            system = prompt_set.load("system") if prompt_set.has("system") else None
        elif system_message:
            text = system_message
            system = Prompt("system_message", text, hashlib.sha256(text.encode("utf-8")).hexdigest(), "")
        else:
            system = None
        client = ChatClient(model, base_url=base_url, timeout=timeout, max_retries=max_retries, cache=cache,
                            pool=llm_pool, stage="proposing")
        goal_note = None
        if goal:
            template = prompt_set.load("goal")
            text = template.render(goal=" ".join(goal.split())).strip()
            goal_note = Prompt("goal", text, hashlib.sha256(text.encode("utf-8")).hexdigest(), prompt_set.name)
        return cls(client, prompt=prompt_set.load(prompt), retry_note=prompt_set.load("propose_retry"),
                   rounds=rounds, samples_per_set=samples_per_set, n_hypotheses=n_hypotheses,
                   temperature=temperature, max_tokens=max_tokens, send_seed=send_seed, system=system,
                   prompt_set=prompt_set, goal=goal_note)

    def start_unit(self) -> None:
        """Count LLM requests from nothing: the next unit of a sweep or benchmark counts its own."""
        self.client.stats = ChatStats()

    def describe(self) -> dict:
        """Settings for result records."""
        return {
            "spec": self.spec, **self.client.describe(), **self.prompt.record(),
            "retry_prompt_sha256": self.retry_note.sha256,
            "system_message": self.system.text if self.system else None,
            "system_sha256": self.system.sha256 if self.system else None,
            "rounds": self.rounds, "samples_per_set": self.samples_per_set,
            "n_hypotheses": self.n_hypotheses, "temperature": self.temperature, "max_tokens": self.max_tokens,
            "send_seed": self.send_seed, "goal": self.goal.text if self.goal else None,
            "llm_requests": asdict(self.client.stats),
        }

    def round_messages(self, context: ProposalContext, rng: np.random.Generator) -> tuple[list[dict], dict]:
        """The user turn of one round, and what it showed the model (``images_a``/``images_b``:
        key and source of each sampled image; ``captions_a``/``captions_b`` when captions were
        shown); ``rng`` draws that round's samples."""
        raise NotImplementedError

    def template(self, name: str) -> Prompt:
        """Template ``name`` of the proposer's prompt set (``strict`` when built without one)."""
        return get_prompt_set(self.prompt_set).load(name)

    def request_params(self, seed: int, round_index: int) -> dict:
        params = {"temperature": self.temperature, "max_tokens": self.max_tokens,
                  "seed": seed * 1000 + round_index if self.send_seed else None}
        return {k: v for k, v in params.items() if v is not None}

    def with_system(self, user_turn: list[dict]) -> list[dict]:
        """The messages of a request: the system message (if any), then ``user_turn`` (ending
        with the researcher's question when one was given)."""
        messages = [*([{"role": "system", "content": self.system.text.strip()}] if self.system else []), *user_turn]
        return _with_note(messages, self.goal.text) if self.goal else messages

    def refine(self, *, hypotheses: list[tuple[str, float]], captions_a: dict[str, str], captions_b: dict[str, str],
               seed: int, round_index: int) -> dict:
        """One refinement request (template ``refine``): the best ``hypotheses`` with their
        AUROC, captions of A images none of them explains and of B images that score like A.
        Returns the template's record and the request records (see :mod:`visdiff.refine`)."""
        messages, params = self.refine_request(hypotheses=hypotheses, captions_a=captions_a, captions_b=captions_b,
                                               seed=seed, round_index=round_index)
        requests = self._ask(messages, params, stage="refining")
        return {"prompt": self.template("refine").record(), "requests": requests}

    def refine_request(self, *, hypotheses: list[tuple[str, float]], captions_a: dict[str, str],
                       captions_b: dict[str, str], seed: int, round_index: int) -> tuple[list[dict], dict]:
        """The messages and request settings :meth:`refine` sends."""
        text = self.template("refine").render(
            hypotheses="\n".join(f"- {phrase} (AUROC {auroc:.2f})" for phrase, auroc in hypotheses),
            captions_a=caption_lines(captions_a) or "(none)", captions_b=caption_lines(captions_b) or "(none)",
            n_hypotheses=self.n_hypotheses)
        # Seeds after the proposal rounds' own: a refinement round is never a replay of one.
        return self.with_system([{"role": "user", "content": text}]), self.request_params(seed, self.rounds + round_index)

    def propose(self, context: ProposalContext) -> list[str]:
        """Phrases of every round, merged without duplicates. Each round appends to
        ``context.rounds``: its index, what it showed, and per request sent (the first, and
        the reminder when the first gave nothing usable) the exact messages, parameters,
        raw answer, parsed phrases and dropped lines with reasons.

        Rounds are independent (each draws its own sample, sees no other's answer): their
        messages are built in order (captioning included), then asked concurrently through the
        client's pool; records and phrases keep round order, as asked one after another."""
        found: list[list[str]] = []
        last_answer = ""
        n_rounds = self.rounds_needed(context)
        rounds = [self.round_request(context, round_index) for round_index in range(n_rounds)]
        with progress_bar(f"LLM rounds ({self.spec})", n_rounds, enabled=context.show_progress) as bar:
            def ask_round(round_index: int) -> list[dict]:
                messages, params, _ = rounds[round_index]
                requests = self._ask(messages, params)
                bar.advance()
                return requests

            asked = self.client.pool.map(ask_round, range(n_rounds))
        for round_index, ((_, _, shown), requests) in enumerate(zip(rounds, asked)):
            context.rounds.append({"round": round_index + 1, "proposer": self.spec, **shown, "requests": requests})
            hypotheses, last_answer = requests[-1]["phrases"], requests[-1]["answer"]
            if not hypotheses:
                log.warning("round %d of %d: %s gave no usable list, even when asked again; answer began %r",
                            round_index + 1, n_rounds, self.spec, last_answer[:120])
            found.append(hypotheses)
        merged = dedupe_phrases([h for hypotheses in found for h in hypotheses])
        if not merged:
            raise ServiceError(
                f"{self.spec} gave no usable hypotheses in {n_rounds} round(s), each asked twice; "
                f"last answer began {last_answer[:200]!r}"
            )
        return merged

    def round_request(self, context: ProposalContext, round_index: int) -> tuple[list[dict], dict, dict]:
        """The messages and settings of round ``round_index``'s request, and what it shows (see
        :meth:`round_messages`). Each round draws from its own stream: rounds differ, reruns
        (and dry runs, :mod:`visdiff.plan`) repeat them exactly."""
        user_turn, shown = self.round_messages(context, np.random.default_rng([context.seed, round_index]))
        return self.with_system(user_turn), self.request_params(context.seed, round_index), shown

    def rounds_needed(self, context: ProposalContext) -> int:
        """``rounds``, or one when a round samples every image (every pair) of both sets: more
        rounds would resend the same captions shuffled, asking nothing new (said in one line)."""
        sampled = (len(context.pairs),) if context.pairs else (len(context.set_a), len(context.set_b))
        if self.rounds == 1 or max(sampled) > self.samples_per_set:
            return self.rounds
        shown = f"{sampled[0]} pairs" if context.pairs else f"{sampled[0]} and {sampled[1]} images"
        log.warning("one proposal round, not %d: sets A and B have %s, no more than the %d sampled per round, "
                    "so every round would show them all", self.rounds, shown, self.samples_per_set)
        return 1

    def _ask(self, messages: list[dict], params: dict, *, stage: str | None = None) -> list[dict]:
        """The request, and the reminder when its answer held no phrase: one record each,
        the reminder's marked ``retry`` (visdiff's addition: the reference asks once) (``stage``:
        counted under another stage than the client's, as refinement is)."""
        requests = []
        for retry, attempt in enumerate((messages, _with_note(messages, self.retry_note.text.strip()))):
            answer = self.client.chat(attempt, stage=stage, **params)
            parsed = parse_answer(answer)
            requests.append({"messages": _shown_text(attempt), "params": params, "retry": bool(retry), "answer": answer,
                             "phrases": parsed.phrases,
                             "dropped": [{"line": line, "reason": reason} for line, reason in parsed.dropped]})
            if parsed.phrases:
                break
        return requests
