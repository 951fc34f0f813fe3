"""Local LLM Lab helpers. Notebooks start with ``import workshop_lib as wl`` and ``lab = wl.connect()``.

The package is layered; each layer imports only the ones above it in this list:

- foundation: ``config`` (settings, paths), ``errors``, ``datasets`` (files under data/), ``extras``
  (packages a lesson installs when it first needs them);
- ``runtime``: reaching a model (``endpoint``, ``models``, ``llamacpp``, ``server``, ``foundry``,
  ``convert``, ``checkup``);
- ``measure``: ``bench``, ``report``, ``plots``, ``compare``;
- the lessons' domains: ``eval`` and ``routing`` (02, 05), ``rag`` (04);
- ``apps``: Chainlit, Open WebUI, the in-browser page (04, 06, 07).

The names below keep notebook imports short: ``wl.bench.stream_once``, ``wl.plot_sweep``, ...
"""
import importlib

from .config import RESULTS_DIR, smoke_mode
from .datasets import load_prompts
from .errors import WorkshopError
from .extras import require
from .measure import plots, report
from .measure.plots import plot_distributions, plot_metrics, plot_sweep
from .runtime import checkup, endpoint
from .runtime.checkup import doctor
from .runtime.endpoint import Connection, connect
from .runtime.models import ensure_model, load_registry

# Imported on first use, under short names: some pull heavy libraries, and some are also run as
# `python -m workshop_lib.measure.bench`, which must not find them already imported.
_LAZY = {"bench": ".measure.bench", "compare": ".measure.compare", "foundry": ".runtime.foundry",
         "convert": ".runtime.convert"}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(_LAZY[name], __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RESULTS_DIR", "Connection", "WorkshopError", "checkup", "connect", "doctor", "endpoint",
           "ensure_model", "load_prompts", "load_registry", "plot_distributions", "plot_metrics",
           "plot_sweep", "plots", "report", "require", "smoke_mode", *_LAZY]
