"""Fallback under failure: ask the primary endpoint, and when it is down, errs or is too slow, the
next one (taught in 05_hybrid_routing).

Local-first keeps data on the laptop and falls back to a remote model when the local server is gone;
remote-first uses the remote model while it answers and keeps working offline. Either way each answer
records who served it and why the others did not.
"""
import os
import shutil
import time
import uuid
from dataclasses import dataclass

from openai import OpenAI

from ..config import cache_dir
from ..measure import bench
from ..runtime import clients, llamacpp, models, process, server


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


def client_for(base_url: str, api_key: str):
    """An OpenAI client for an endpoint of the chain: direct to a server on this machine, through the
    user's proxy (if any) to a remote one; no retries, so a failure moves on to the next endpoint."""
    return clients.openai_client(base_url, api_key, max_retries=0)


class ThrowawayServer:
    """A second llama-server of our own, on its own port and folder, that a lesson may stop mid-run
    to show a failure (the shared embedded server is never touched).

    Use it as ``with ThrowawayServer(alias) as throwaway:`` (that starts it); leaving the block stops
    it and removes its folder and record. Its record lives in the shared procs/ folder, so after a
    kernel restart `python lab.py stop` (``python -m workshop_lib stop``) still finds and stops it."""

    def __init__(self, alias: str):
        self.alias = alias
        self.name = f"{server.HELPER_PREFIX}fallback-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.home = cache_dir() / "helpers" / self.name
        self.info = None

    @staticmethod
    def available() -> bool:
        """True when the llama-server build exists (starting one must not mean a 7-minute build)."""
        return llamacpp.is_built()

    def start(self) -> "ThrowawayServer":
        self.info = server.start_server(home=self.home, aliases=[self.alias], progress=False, name=self.name,
                                        records=process.records_home())
        return self

    def running(self) -> bool:
        return server.running_server(self.home, self.name, process.records_home()) is not None

    def client(self):
        return client_for(self.info.base_url, server.api_key())

    def stop(self) -> bool:
        return server.stop_server(self.home, self.name, process.records_home())

    def close(self) -> None:
        """Stop it if it still runs and delete its folder and lock: nothing is left behind."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        server.forget_helper(self.name)

    def __enter__(self) -> "ThrowawayServer":
        try:
            return self.start()
        except BaseException:  # a start that failed half-way (Ctrl-C included) leaves nothing either
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()


def registry_alias(model_id: str) -> str:
    """The packaged model behind a served id (``qwen2.5-coder-0.5b-instruct-generic-cpu:4`` ->
    ``qwen2.5-coder-0.5b``), so a throwaway server can serve the same weights."""
    known = sorted(models.load_registry(), key=len, reverse=True)
    return next((alias for alias in known if model_id.lower().startswith(alias)), "qwen2.5-coder-0.5b")
