"""Local LLM Lab helpers. Notebooks start with ``import workshop_lib as wl`` and ``lab = wl.connect()``.

One module per concern: ``endpoint`` (connect), ``models`` (weights from packages), ``server`` and
``llamacpp`` (the embedded llama-server), ``bench`` (timing), ``report`` (summaries, exports),
``plots``, ``checkup`` (doctor), ``datasets`` (files under data/), ``foundry`` and
``convert`` (Foundry Local, bring your own model).
"""
from . import bench, checkup, endpoint, foundry, report
from .bench import run_prompts, stream_once
from .config import RESULTS_DIR, smoke_mode
from .datasets import load_prompts
from .checkup import doctor
from .endpoint import Connection, connect
from .errors import WorkshopError
from .models import ensure_model, load_registry
from .plots import plot_distributions, plot_metrics, plot_sweep

__all__ = ["RESULTS_DIR", "Connection", "WorkshopError", "connect", "doctor", "ensure_model", "load_prompts", "load_registry",
           "plot_distributions", "plot_metrics", "plot_sweep", "run_prompts", "smoke_mode", "stream_once"]
