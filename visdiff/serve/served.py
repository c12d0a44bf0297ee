"""One kept :class:`~visdiff.comparison.Comparison` behind the web app, safe to share between
the server's worker threads.

The comparison's scoring stage keeps state between calls (new texts' cache rows written in
the background, stage seconds), so every call into it holds one lock. Ranking a few phrases
takes milliseconds; a proposal holds the lock for its whole run, and requests that would wait
longer than :data:`LOCK_WAIT_S` for it are told the server is busy instead of piling up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from visdiff.comparison import Comparison
from visdiff.errors import InputError, VisdiffError
from visdiff.evidence import jpeg_of, short_names, top_images
from visdiff.jsonable import to_jsonable
from visdiff.ranking import clean_hypotheses
from visdiff.report.plots import score_histogram
from visdiff.result import ranked_table

log = logging.getLogger(__name__)

SIDES = ("a", "b")
LOCK_WAIT_S = 10.0
THUMBNAIL_PX = 160
VIEW_PX = 1024  # the larger view of one image: re-encoded, never the file's own bytes
JPEG_QUALITY = 85
# Answers kept for hypotheses asked again (the page asks for a row's images and scores on each click).
RANKED_KEPT = 256
THUMBNAILS_KEPT = 4096


class Busy(VisdiffError):
    """The comparison is held by a running proposal: the request is refused, not queued."""


class NoProposer(InputError):
    """``POST /api/propose`` on a server with no proposer configured."""


@dataclass
class ProposalJob:
    """The state of ``POST /api/propose``: one at a time, polled by the page."""

    state: str = "idle"  # idle, proposing, ranking, done, failed
    started: float = 0.0
    finished: float = 0.0
    rows: list[dict] = field(default_factory=list)
    error: str = ""

    def record(self) -> dict:
        end = self.finished or time.monotonic()
        elapsed = round(end - self.started, 2) if self.started else 0.0
        return {"state": self.state, "elapsed_s": elapsed, "rows": self.rows, "error": self.error}


class LruDict(OrderedDict):
    """A dict that forgets its least recently used entries beyond ``limit``; used from the event
    loop and worker threads alike."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def get_recent(self, key):
        try:  # one call each: another thread may drop the key in between
            self.move_to_end(key)
            return self[key]
        except KeyError:
            return None

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class ServedComparison:
    """The comparison, the run's ranked rows and provenance, and the answers of the JSON API.

    Parameters
    ----------
    comparison : Comparison
        Both sets embedded, kept for the server's lifetime.
    rows : list of dict
        The run's ranked table as ``results.json`` has it (``rank`` first).
    provenance : dict
        What made the run: versions, command line, settings by group, the sets.
    can_propose : bool
        Whether ``POST /api/propose`` may run the run's proposer (an LLM, maybe): false when
        none is configured, and then the request is refused.
    captions : dict, optional
        Captions by content key recorded by a finished run (shown under its images); captions
        made in this process are the captioning stage's own.
    """

    def __init__(self, comparison: Comparison, rows: list[dict], provenance: dict, *, can_propose: bool,
                 captions: dict[str, str] | None = None) -> None:
        self.comparison = comparison
        self.recorded_captions = dict(captions or {})
        self.rows = to_jsonable(rows)
        self.provenance = to_jsonable(provenance)
        self.can_propose = can_propose
        self.job = ProposalJob()
        self._lock = threading.Lock()
        self._ranked = LruDict(RANKED_KEPT)
        self._thumbnails = LruDict(THUMBNAILS_KEPT)
        self._sets = {"a": comparison.set_a, "b": comparison.set_b}
        # Images are found by content key within the loaded sets: a request never names a path.
        self._by_key = {side: {item.key: item for item in image_set.items} for side, image_set in self._sets.items()}
        self._names = {side: short_names(image_set) for side, image_set in self._sets.items()}

    @contextmanager
    def _held(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=LOCK_WAIT_S):
            raise Busy("the server is busy proposing hypotheses; try again when the proposal has finished")
        try:
            yield
        finally:
            self._lock.release()

    def cached_rank(self, hypotheses: tuple[str, ...]) -> list[dict] | None:
        """The rows of an earlier :meth:`rank` of exactly these hypotheses, if still kept."""
        return self._ranked.get_recent(hypotheses)

    def rank(self, hypotheses: tuple[str, ...]) -> list[dict]:
        """Rows of :meth:`Comparison.rank` (``rank``, ``hypothesis``, ``auroc`` with its interval,
        ``p_greater``, ``q_value``...) for ``hypotheses``, cleaned as the CLI cleans them."""
        cleaned = clean_hypotheses(list(hypotheses))
        with self._held():
            table = self.comparison.rank(cleaned)
        rows = to_jsonable(ranked_table(table).to_dict("records"))
        self._ranked.put(hypotheses, rows)
        return rows

    def _column(self, hypothesis: str) -> tuple[str, dict[str, np.ndarray]]:
        [hypothesis] = clean_hypotheses([hypothesis])
        with self._held():
            scores = self.comparison.scores([hypothesis])
        return hypothesis, {side: s[:, 0].float().cpu().numpy() for side, s in zip(SIDES, scores)}

    def images(self, hypothesis: str, side: str, k: int, *, lowest: bool = False) -> dict:
        """The ``k`` images of ``side`` scoring highest (``lowest``: lowest) for ``hypothesis``,
        each with its content key, name, score and thumbnail address, and any tie at the cut."""
        hypothesis, columns = self._column(hypothesis)
        captions = {**self.recorded_captions, **self.comparison.stages.captioning.captions}
        gallery = top_images(self._sets[side], columns[side], captions, k=k, thumbnails=_ContentKeys(),
                             names=self._names[side], lowest=lowest)
        return to_jsonable({
            "hypothesis": hypothesis, "side": side, "lowest": lowest, "n_images": len(self._sets[side]),
            "images": [{"key": image.data_uri, "name": image.name, "score": image.score, "caption": image.caption,
                        "thumbnail": f"thumbnails/{side}/{image.data_uri}", "view": f"images/{side}/{image.data_uri}"}
                       for image in gallery.images],
            "tie": str(gallery.tie) if gallery.tie else None,
        })

    def histogram(self, hypothesis: str) -> dict:
        """Histogram geometry of the scores of A and of B for ``hypothesis`` (as the report draws it)."""
        hypothesis, columns = self._column(hypothesis)
        return to_jsonable({"hypothesis": hypothesis, "plot": score_histogram(columns["a"], columns["b"]),
                            "mean_a": float(np.nanmean(columns["a"])), "mean_b": float(np.nanmean(columns["b"]))})

    def image_jpeg(self, side: str, key: str, *, thumbnail: bool) -> bytes | None:
        """A JPEG of the image of set ``side`` with content ``key`` (a thumbnail, or a view of at
        most :data:`VIEW_PX`), made from the set's own item; None when the set has no such image."""
        item = self._by_key[side].get(key)
        if item is None:
            return None
        if thumbnail:
            kept = self._thumbnails.get_recent(key)
            if kept is not None:
                return kept
        # InputError when the file can no longer be read.
        jpeg = jpeg_of(item, THUMBNAIL_PX if thumbnail else VIEW_PX, JPEG_QUALITY)
        if thumbnail:
            self._thumbnails.put(key, jpeg)
        return jpeg

    def start_proposal(self) -> bool:
        """Start the proposer in a thread of its own unless one is running; False if one is."""
        if not self.can_propose:
            raise NoProposer("no proposer is configured for this server: start it without --results, or give "
                             "--llm MODEL or --proposer SPEC, to propose hypotheses")
        if self.job.state in ("proposing", "ranking"):
            return False
        self.job = ProposalJob(state="proposing", started=time.monotonic())
        threading.Thread(target=self._propose, args=(self.job,), name="visdiff-propose", daemon=True).start()
        return True

    def _propose(self, job: ProposalJob) -> None:
        try:
            with self._lock:  # the proposal may take minutes: requests meanwhile are told it is busy
                phrases = self.comparison.propose(over="a")
                job.state = "ranking"
                table = self.comparison.rank(phrases)
            job.rows = to_jsonable(ranked_table(table).to_dict("records"))
            job.state = "done"
        except Exception as e:  # noqa: BLE001 - any failure is the job's answer, shown on the page
            log.warning("proposal failed: %s", e)
            job.error = str(e) if isinstance(e, VisdiffError) else f"unexpected {type(e).__name__}: {e}"
            job.state = "failed"
        finally:
            job.finished = time.monotonic()


class _ContentKeys:
    """Stands in for :class:`~visdiff.evidence.ThumbnailCache` in :func:`top_images`: each
    image's content key in place of its thumbnail, which is made only when the page asks."""

    def get(self, item) -> tuple[str, str]:
        return item.key, ""
