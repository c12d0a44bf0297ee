"""visdiff: describe in plain words how image set A differs from image set B.

Public API: :func:`compare`, :func:`propose`, :func:`caption`, :func:`rank`,
:func:`rank_scores`, :func:`load_image_set`, :func:`load_prompt`, :class:`CompareResult`, and
the stage registries' ``create_*`` / ``list_*`` functions. Everything else is internal.
"""

from visdiff.errors import BackendError, InputError, ServiceError, VisdiffError
from visdiff.io import ImageSet, load_image_set
from visdiff.rankers import create_scorer, list_scorers
from visdiff.ranking import rank, rank_scores
from visdiff.captioning import caption
from visdiff.pipeline import compare, propose
from visdiff.prompts import load_prompt
from visdiff.types import CompareResult

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CompareResult",
    "ImageSet",
    "InputError",
    "ServiceError",
    "VisdiffError",
    "caption",
    "compare",
    "create_scorer",
    "list_scorers",
    "load_image_set",
    "load_prompt",
    "propose",
    "rank",
    "rank_scores",
]
