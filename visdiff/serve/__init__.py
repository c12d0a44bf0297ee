"""``visdiff serve``: a local web app and JSON API over one kept :class:`~visdiff.comparison.Comparison`.

:mod:`visdiff.serve.served` answers (rank, images, histograms, proposals) under one lock;
:mod:`visdiff.serve.app` is the ASGI app (Starlette) with the static page in ``static/``;
:mod:`visdiff.serve.runs` makes the comparison: a new run, or a finished one reopened.
Needs the ``serve`` extra: ``pip install 'visdiff[serve]'``.
"""

from visdiff.serve.app import LOOPBACK_HOSTS, create_app
from visdiff.serve.runs import FinishedRun, serve_new_run
from visdiff.serve.served import ServedComparison

__all__ = ["LOOPBACK_HOSTS", "FinishedRun", "ServedComparison", "create_app", "serve_new_run"]
