"""visdiff: describe in plain words how image set A differs from image set B.

Public API: :func:`rank`, :func:`rank_scores`, :func:`load_image_set`, and the stage
registries' ``create_*`` / ``list_*`` functions. Everything else is internal.
"""

from visdiff.errors import BackendError, InputError, ServiceError, VisdiffError
from visdiff.io import ImageSet, load_image_set
from visdiff.rankers import create_scorer, list_scorers
from visdiff.ranking import rank, rank_scores

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ImageSet",
    "InputError",
    "ServiceError",
    "VisdiffError",
    "create_scorer",
    "list_scorers",
    "load_image_set",
    "rank",
    "rank_scores",
]
