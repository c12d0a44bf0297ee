"""visdiff: describe in plain words how image set A differs from image set B.

Public API: :func:`compare`, :func:`propose`, :func:`caption`, :func:`rank`,
:func:`rank_scores`, :func:`load_image_set`, :func:`load_prompt`, :class:`RunOptions`,
:class:`CompareResult`, and
the stage registries' ``create_*`` / ``list_*`` functions. Everything else is internal.
"""

from visdiff.errors import BackendError, InputError, ServiceError, VisdiffError
from visdiff.image_sets import ImageSet, load_image_set
from visdiff.options import RunOptions
from visdiff.scorers import create_scorer, list_scorers
from visdiff.ranking import rank_scores
from visdiff.pipeline import caption, compare, propose, rank
from visdiff.prompts import load_prompt
from visdiff.result import CompareResult

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CompareResult",
    "ImageSet",
    "InputError",
    "RunOptions",
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
