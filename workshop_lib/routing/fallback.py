"""Fallback under failure: ask the primary endpoint, and when it is down, errs or is too slow, the
next one (taught in 05_hybrid_routing).

Local-first keeps data on the laptop and falls back to a remote model when the local server is gone;
remote-first uses the remote model while it answers and keeps working offline. Either way each answer
records who served it and why the others did not.
"""
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from openai import OpenAI

from ..measure import bench
from ..runtime import llamacpp, models, server


@dataclass
class Endpoint:
    """A named place to send a request: its client, its model id, and how long we wait for it."""
    name: str
    client: OpenAI
    model: str
    timeout_s: float = 60.0


def ask(endpoints: list, messages: list, max_tokens: int = 64) -> dict:
    """Try each endpoint in order; return the first good answer as a row with ``served_by``,
    ``text``, ``e2e_s`` (including the time lost on failed tries) and ``failures``."""
    start, failures = time.perf_counter(), []
    for endpoint in endpoints:
        client = endpoint.client.with_options(timeout=endpoint.timeout_s, max_retries=0)
        row = bench.stream_once(client, endpoint.model, messages, max_tokens=max_tokens)
        if row["status"] == "ok" and row["text"].strip():
            return {"served_by": endpoint.name, "text": row["text"], "e2e_s": time.perf_counter() - start,
                    "failures": "; ".join(failures)}
        failures.append(f"{endpoint.name}: {row.get('error') or 'empty answer'}"[:160])
    return {"served_by": None, "text": "", "e2e_s": time.perf_counter() - start, "failures": "; ".join(failures)}


def remote_from_environment():
    """``(base_url, api_key, model)`` of a remote OpenAI-compatible endpoint named in the environment
    (``WORKSHOP_REMOTE_ENDPOINT``, ``WORKSHOP_REMOTE_API_KEY``, ``WORKSHOP_REMOTE_MODEL``), else None."""
    url = os.environ.get("WORKSHOP_REMOTE_ENDPOINT")
    if not url:
        return None
    return url, os.environ.get("WORKSHOP_REMOTE_API_KEY", "not-needed"), os.environ.get("WORKSHOP_REMOTE_MODEL", "gpt-4o-mini")


class ThrowawayServer:
    """A second llama-server of our own, on its own port and state folder, that a lesson may stop
    mid-run to show a failure (the shared embedded server is never touched)."""

    def __init__(self, alias: str):
        self.alias = alias
        self.home = Path(tempfile.mkdtemp(prefix="wl-fallback-"))
        self.info = None

    @staticmethod
    def available() -> bool:
        """True when the llama-server build exists (starting one must not mean a 7-minute build)."""
        return llamacpp.is_built()

    def start(self) -> "ThrowawayServer":
        self.info = server.start_server(home=self.home, aliases=[self.alias], progress=False)
        return self

    def client(self) -> OpenAI:
        return OpenAI(base_url=self.info.base_url, api_key=server.api_key(), max_retries=0)

    def stop(self) -> bool:
        return server.stop_server(self.home)

    def close(self) -> None:
        """Stop it if it still runs and delete its state folder: nothing is left behind."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def registry_alias(model_id: str) -> str:
    """The packaged model behind a served id (``qwen2.5-coder-0.5b-instruct-generic-cpu:4`` ->
    ``qwen2.5-coder-0.5b``), so a throwaway server can serve the same weights."""
    known = sorted(models.load_registry(), key=len, reverse=True)
    return next((alias for alias in known if model_id.lower().startswith(alias)), "qwen2.5-coder-0.5b")
