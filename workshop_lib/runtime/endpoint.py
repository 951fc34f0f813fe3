"""``connect()``: find an OpenAI-compatible model endpoint and say which one (taught in 00_setup_and_first_chat).

Resolution order, first that applies wins:
1. an endpoint named in the environment: ``WORKSHOP_ENDPOINT`` (backend ``environment``, any
   OpenAI-compatible server) or ``FOUNDRY_LOCAL_ENDPOINT`` (backend ``foundry-service``);
2. ``foundry-service``: a Foundry Local service is running (found through the ``foundry`` CLI);
3. ``embedded``: our own llama-server over the models PyPI packages ship, started if needed.
"""
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from openai import OpenAI

from . import server
from ..config import setting
from ..errors import EndpointError, UnknownModelError

ENDPOINT_VARIABLES = ("WORKSHOP_ENDPOINT", "FOUNDRY_LOCAL_ENDPOINT")
ROLES = ("slm", "llm")
DEFAULT_ROLES = {
    "embedded": {"slm": "qwen2.5-coder-0.5b", "llm": "qwen2.5-coder-1.5b"},
    "foundry-service": {"slm": "phi-4-mini", "llm": "qwen2.5-7b"},
}


@dataclass
class Connection:
    """What a notebook needs: the client, the model id per role, and where they came from."""
    client: OpenAI
    backend: str
    base_url: str
    models: dict
    available: list = field(default_factory=list)

    @property
    def slm(self) -> str:
        return self.models["slm"]

    @property
    def llm(self) -> str:
        return self.models["llm"]

    def describe(self) -> str:
        roles = ", ".join(f"{role} = {model}" for role, model in self.models.items())
        return f"Backend: {self.backend} at {self.base_url}\nModels: {roles}"


def connect(verbose: bool = True) -> Connection:
    """Pick the backend, check it answers, map the roles to its model ids, and print the choice."""
    backend, base_url, api_key = find_endpoint()
    available = list_models(base_url, api_key)
    roles = {role: resolve_model(role_model(role, backend, available), available, base_url, role)
             for role in ROLES}
    client = OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                    timeout=float(setting("timeout", 300)), max_retries=0)
    conn = Connection(client, backend, base_url, roles, available)
    if verbose:
        print(conn.describe())
    return conn


def find_endpoint(start: bool = True):
    """``(backend, base_url, api_key)`` following the resolution order above; with ``start=False``
    None instead of starting the embedded server."""
    if url := os.environ.get("WORKSHOP_ENDPOINT"):
        return "environment", normalize_base_url(url), setting("api_key")
    if url := os.environ.get("FOUNDRY_LOCAL_ENDPOINT") or foundry_service_url():
        return "foundry-service", normalize_base_url(url), None
    info = server.start_server() if start else server.running_server()
    return ("embedded", info.base_url, None) if info else None


def normalize_base_url(url: str) -> str:
    """Accept ``host:port``, ``http://host:port`` or ``.../v1``; return ``http://host:port/v1``."""
    url = url.strip().rstrip("/")
    if not re.match(r"https?://", url):
        url = "http://" + url
    return url if url.endswith("/v1") else url + "/v1"


def foundry_service_url():
    """The URL of a running Foundry Local service, read from ``foundry service status``; else None."""
    if not shutil.which("foundry"):
        return None
    for command in (["foundry", "service", "status"], ["foundry", "server", "status"]):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if m := re.search(r"https?://[\w.\-]+:\d+", out.stdout + out.stderr):
            return m.group(0)
    return None


def list_models(base_url: str, api_key=None, timeout: float = 15) -> list:
    """Model ids from ``GET /v1/models``; a down endpoint gives an error that says how to start it."""
    request = urllib.request.Request(f"{base_url}/models",
                                     headers={"Authorization": f"Bearer {api_key or 'not-needed'}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return [m["id"] for m in json.load(resp)["data"]]
    except (OSError, ValueError, KeyError) as exc:
        raise EndpointError(f"The model endpoint {base_url} is not answering ({_reason(exc)}).",
                            _how_to_start(base_url)) from exc


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)


def _how_to_start(base_url: str) -> str:
    if any(os.environ.get(v) for v in ENDPOINT_VARIABLES):
        return (f"Start the server behind {base_url}, or unset {' / '.join(ENDPOINT_VARIABLES)} "
                "to use the workshop's embedded server.")
    return ("Run `python -m workshop_lib serve` (embedded server) or `foundry service start` "
            "(Foundry Local), then run this cell again.")


def role_model(role: str, backend: str, available: list) -> str:
    """The model asked for this role: a setting, else the backend's default, else the first served."""
    if chosen := setting(f"{role}_model"):
        return chosen
    known = backend in DEFAULT_ROLES
    for defaults in [DEFAULT_ROLES[backend]] if known else DEFAULT_ROLES.values():
        if _match(defaults[role], available):
            return defaults[role]
    if available and not known:  # an unknown server with none of our defaults: take its first model
        return available[0]
    return DEFAULT_ROLES["foundry-service" if not known else backend][role]


def resolve_model(name: str, available: list, base_url: str = "", role: str = "") -> str:
    """The endpoint's id for ``name``: exact, else the shortest id starting with it (Foundry Local
    reports ``Phi-4-mini-instruct-generic-cpu`` for alias ``phi-4-mini``)."""
    if found := _match(name, available):
        return found
    load = f"with Foundry Local, `foundry model run {name}` downloads and loads it"
    variable = f"WORKSHOP_{role.upper()}_MODEL" if role else "the model setting"
    fix = f"Set {variable} to one of them, or load it: {load}." if available else f"Load a model first: {load}."
    raise UnknownModelError(f"Model {name!r} is not served by {base_url or 'this endpoint'}. "
                            f"It serves: {', '.join(available) or 'no model at all'}.", fix)


def _match(name: str, available: list):
    if name in available:
        return name
    key = _normalize(name)
    candidates = [m for m in available if _normalize(m).startswith(key)]
    return min(candidates, key=len) if candidates else None


def _normalize(model_id: str) -> str:
    return re.sub(r"[^a-z0-9]", "", model_id.lower())
