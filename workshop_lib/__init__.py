"""Local LLM Lab helpers. Notebooks start with ``import workshop_lib as wl`` and ``lab = wl.connect()``.

One module per concern: ``endpoint`` (connect), ``models`` (weights from packages), ``server`` and
``llamacpp`` (the embedded llama-server), ``bench`` (timing), ``report`` (summaries, exports),
``plots``, ``checkup`` (doctor), ``datasets`` (files under data/), ``foundry`` and ``convert``
(Foundry Local, bring your own model).
"""
import importlib

from . import checkup, endpoint, report
from .checkup import doctor
from .config import RESULTS_DIR, smoke_mode
from .datasets import load_prompts
from .endpoint import Connection, connect
from .errors import WorkshopError
from .models import ensure_model, load_registry
from .plots import plot_distributions, plot_metrics, plot_sweep

# Imported on first use: they are also run as `python -m workshop_lib.bench` / `.foundry`, which
# must not find them already imported.
_LAZY = ("bench", "foundry", "convert")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RESULTS_DIR", "Connection", "checkup", "endpoint", "report", "WorkshopError", "connect", "doctor", "ensure_model",
           "load_prompts", "load_registry", "plot_distributions", "plot_metrics", "plot_sweep",
           "smoke_mode", *_LAZY]
