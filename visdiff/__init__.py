"""visdiff: describe in plain words how image set A differs from image set B.

Public API: :func:`compare`, :func:`compare_many` (each of several sets against the others),
:func:`propose`, :func:`caption`, :func:`rank`, :func:`embed`,
:func:`rank_scores`, :func:`load_image_set`, :func:`load_prompt`, :class:`RunOptions`,
:class:`Comparison` (both sets' embeddings kept loaded, for interactive use),
:class:`MultiComparison`, :class:`ValueComparison` (one set against a value per image: ``compare(images,
score=...)``), :class:`ValueResult`, :func:`rank_by_value`, :class:`CompareResult`, :class:`MultiCompareResult`, :class:`RankedTable`,
:class:`ImageGallery`, and the stage
registries' ``create_*`` / ``list_*`` functions.
Everything else is internal.

Names are imported on first use: ``import visdiff`` stays light (the command line starts,
and answers Ctrl-C, before torch is loaded).
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "BackendError": "visdiff.errors",
    "InputError": "visdiff.errors",
    "ServiceError": "visdiff.errors",
    "VisdiffError": "visdiff.errors",
    "ImageSet": "visdiff.image_sets",
    "load_image_set": "visdiff.sources",
    "RunOptions": "visdiff.options",
    "create_scorer": "visdiff.scorers",
    "list_scorers": "visdiff.scorers",
    "rank_scores": "visdiff.ranking",
    "caption": "visdiff.pipeline",
    "compare": "visdiff.pipeline",
    "compare_many": "visdiff.pipeline",
    "embed": "visdiff.pipeline",
    "propose": "visdiff.pipeline",
    "rank": "visdiff.pipeline",
    "load_prompt": "visdiff.prompts",
    "Comparison": "visdiff.comparison",
    "MultiComparison": "visdiff.multi",
    "ValueComparison": "visdiff.value_comparison",
    "ValueResult": "visdiff.value_result",
    "rank_by_value": "visdiff.value_ranking",
    "CompareResult": "visdiff.result",
    "MultiCompareResult": "visdiff.result",
    "ImageGallery": "visdiff.result",
    "RankedTable": "visdiff.result",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'visdiff' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
