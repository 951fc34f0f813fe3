"""Local LLM Lab helpers. Notebooks start with ``import workshop_lib as wl`` and ``lab = wl.connect()``.

One module per concern: ``endpoint`` (connect), ``models`` (weights from packages), ``server`` and
``llamacpp`` (the embedded llama-server), ``bench`` (timing), ``plots``, ``checkup`` (doctor).
"""
from .bench import run_prompts, stream_once
from .config import smoke_mode
from .datasets import load_prompts
from .checkup import doctor
from .endpoint import Connection, connect
from .errors import WorkshopError
from .models import ensure_model, load_registry
from .plots import plot_metrics

__all__ = ["Connection", "WorkshopError", "connect", "doctor", "ensure_model", "load_prompts", "load_registry",
           "plot_metrics", "run_prompts", "smoke_mode", "stream_once"]
