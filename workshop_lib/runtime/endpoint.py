"""``connect()``: find an OpenAI-compatible model endpoint and say which one (taught in 00_setup_and_first_chat).

Resolution order, first that applies wins:
1. an endpoint named in the environment: ``WORKSHOP_ENDPOINT`` (backend ``environment``, any
   OpenAI-compatible server) or ``FOUNDRY_LOCAL_ENDPOINT`` (backend ``foundry-service``);
2. ``foundry-service``: a Foundry Local service is running (found through the ``foundry`` CLI);
3. ``embedded``: our own llama-server over the models PyPI packages ship, started if needed.

Each role (``slm``, ``llm``) gets the first model of its preference list that the server serves.
A role the server lacks is not an error until a lesson uses it: one-model lessons still run.
"""
import functools
import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field

from openai import OpenAI

from . import capabilities as caps
from . import clients, foundry, server
from ..config import float_setting, setting
from ..errors import EndpointError, UnknownModelError, WorkshopError

ENDPOINT_VARIABLES = ("WORKSHOP_ENDPOINT", "FOUNDRY_LOCAL_ENDPOINT")
ROLES = ("slm", "llm")
# Preferred models per role, best first. Foundry Local aliases from its catalog that run at a usable
# speed on a laptop CPU; the Qwen2.5-Coder pair comes first because the embedded backend serves the
# same two models, so numbers compare across backends (lesson 01).
DEFAULT_ROLES = {
    "embedded": {"slm": ("qwen2.5-coder-0.5b",), "llm": ("qwen2.5-coder-1.5b",)},
    "foundry-service": {"slm": ("qwen2.5-coder-0.5b", "qwen2.5-0.5b", "qwen3-0.6b"),
                        "llm": ("qwen2.5-coder-1.5b", "qwen2.5-1.5b", "phi-4-mini", "qwen3-1.7b")},
}


def how_to_run_skipped(backend: str) -> str:
    """The commands that give a skipped part the embedded llama.cpp backend, which has every capability
    the lessons use; empty on the embedded backend itself."""
    if backend == "foundry-service":
        return f" To run it: {foundry.SETUP_STEP}, then {foundry.SWITCH_STEP}."
    if backend == "environment":
        return (" To run it on the embedded llama.cpp server: unset WORKSHOP_ENDPOINT (and FOUNDRY_LOCAL_ENDPOINT), "
                "run `python lab.py setup`, restart the kernel and run this notebook again.")
    return ""


@dataclass
class Connection:
    """What a notebook needs: the client, the model id per role, where they came from, the key raw
    HTTP calls send (``api_key``), and what the server can do (``capabilities``, ``supports``)."""
    client: OpenAI
    backend: str
    base_url: str
    models: dict  # role -> model id; None for a role this server does not serve
    available: list = field(default_factory=list)
    api_key: str = None  # what raw HTTP callers (and Open WebUI, Chainlit) send as Bearer; None: none needed
    missing: dict = field(default_factory=dict, repr=False)  # role -> the UnknownModelError to raise on use

    @property
    def slm(self) -> str:
        return self.model("slm")

    @property
    def llm(self) -> str:
        return self.model("llm")

    def model(self, role: str) -> str:
        """The model id for ``role``; a role the server lacks raises the error that says how to load it."""
        if role in self.missing:
            raise self.missing[role]
        return self.models[role]

    def has_role(self, role: str, purpose: str = "") -> bool:
        """True if ``role`` has a model here; else prints ONE sentence (what is skipped, how to load it)."""
        if role not in self.missing:
            return True
        print(f"Skipped: {purpose or 'this part'} needs the {role} model. {self.missing[role].fix}")
        return False

    @property
    def capabilities(self) -> caps.Capabilities:
        """What this server can do, found by asking it (once per server and process)."""
        return self._probe().capabilities

    def supports(self, name: str, purpose: str = "") -> bool:
        """True if the server offers capability ``name``; else prints ONE sentence saying what
        ``purpose`` skips and why (taught in 00_setup_and_first_chat, used by every lesson)."""
        if name not in caps.MEANING:
            raise WorkshopError(f"Unknown capability {name!r}.", f"Use one of: {', '.join(caps.MEANING)}.")
        if getattr(self.capabilities, name):
            return True
        print(f"Skipped: {purpose or 'this part'} needs `{name}` ({caps.MEANING[name]}), which this server "
              f"({self.backend} at {self.base_url}) does not offer.{how_to_run_skipped(self.backend)}")
        return False

    def how_to_run(self) -> str:
        """" To run it: ..." for a part a lesson skips on this backend: the commands that give it the embedded
        llama.cpp backend ("" on that backend itself)."""
        return how_to_run_skipped(self.backend)

    def token_counter(self, model: str):
        """``count(text) -> int`` with ``model``'s own tokenizer, asked over HTTP; None when the
        server has no tokenize endpoint (then count from ``usage``, never from chunks)."""
        route = self._probe().tokenize_route
        if not route:
            return None
        root = self.base_url.removesuffix("/v1")
        return functools.partial(caps.count_tokens, root, route, model, api_key=self.api_key)

    def _probe(self) -> caps.Probe:
        served = [m for m in self.models.values() if m] or self.available[:1]
        return caps.probe(self.base_url, served, self.api_key, self.backend)

    def describe(self) -> str:
        roles = ", ".join(f"{role} = {model or 'not served here'}" for role, model in self.models.items())
        lines = [f"Backend: {self.backend} at {self.base_url}", f"Models: {roles}"]
        lines += [f"  {role}: {error.fix}" for role, error in self.missing.items()]
        return "\n".join(lines)

    def describe_capabilities(self) -> str:
        found = asdict(self.capabilities)
        yes, no = [n for n, ok in found.items() if ok], [n for n, ok in found.items() if not ok]
        return f"This server offers: {', '.join(yes) or 'the OpenAI API only'}" + (
            f"\nNot offered (lessons skip what needs them, and say so): {', '.join(no)}" if no else "")


def connect(verbose: bool = True) -> Connection:
    """Pick the backend, check it answers, map the roles to its model ids, and print the choice
    (with ``verbose``, also what the server can do: that asks it, about a second)."""
    timeout = float_setting("timeout", 300, minimum=1, example=300)
    clients.exempt_loopback_from_proxies()  # a client the lesson builds itself must not meet the proxy either
    backend, base_url, api_key = find_endpoint()
    available = list_models(base_url, api_key)
    models, missing = resolve_roles(backend, available, base_url)
    client = clients.openai_client(base_url, api_key or "not-needed", timeout, max_retries=0)
    conn = Connection(client, backend, base_url, models, available, api_key, missing)
    if verbose:
        print(conn.describe())
        print(conn.describe_capabilities())
    return conn


def find_endpoint(start: bool = True):
    """``(backend, base_url, api_key)`` following the resolution order above; with ``start=False``
    None instead of starting the embedded server."""
    if url := os.environ.get("WORKSHOP_ENDPOINT"):
        base_url = normalize_base_url(url, "WORKSHOP_ENDPOINT")
        return "environment", base_url, setting("api_key") or own_key(base_url)
    if url := os.environ.get("FOUNDRY_LOCAL_ENDPOINT"):
        base_url = normalize_base_url(url, "FOUNDRY_LOCAL_ENDPOINT")
        return "foundry-service", base_url, own_key(base_url)
    if url := foundry_service_url():
        return "foundry-service", normalize_base_url(url), None
    info = server.start_server() if start else server.running_server()
    return ("embedded", info.base_url, info.api_key or server.api_key()) if info else None


def own_key(base_url: str):
    """This installation's key if ``base_url`` is one of our own servers (the embedded llama-server
    or the compat server), so it never has to be printed or copied; else None."""
    from . import compat_server  # here, not at the top: `python -m ...compat_server` must not find it imported
    parts = urllib.parse.urlsplit(base_url)
    ports = [info.port for info in (server.running_server(), compat_server.running()) if info]
    local = parts.hostname in (server.HOST, "localhost")
    return server.api_key() if local and parts.port in ports else None


def normalize_base_url(url: str, variable: str = "the endpoint setting") -> str:
    """Accept ``host:port``, ``http://host:port`` or ``.../v1``; return ``http://host:port/v1``.
    Anything else (``htp:/bad url``) is an error naming ``variable`` and the fix."""
    raw = url.strip()
    candidate = raw.rstrip("/") if re.match(r"https?://", raw, re.I) else "http://" + raw.rstrip("/")
    parts = urllib.parse.urlsplit(candidate)
    try:
        port_ok = parts.port is not None or not parts.netloc.endswith(":")
    except ValueError:  # a port that is not a number, or out of range
        port_ok = False
    if re.search(r"\s", raw) or "://" in candidate[8:] or not parts.hostname or not port_ok:
        raise EndpointError(f"The setting {variable} is {raw!r}, which is not a server address.",
                            f"Set {variable} to the server's base URL, such as http://127.0.0.1:5273 or "
                            f"http://127.0.0.1:5273/v1, or unset it to let connect() find a server.")
    return candidate if candidate.endswith("/v1") else candidate + "/v1"


# `foundry ... status` per CLI generation: 0.8 and before name the background service `service`, the
# 0.10 preview renamed it `server`. Each generation rejects the other's word, so both are asked.
FOUNDRY_STATUS_COMMANDS = (("service", "status"), ("server", "status"))


def foundry_service_url():
    """The URL of a running Foundry Local service, read from ``foundry service status`` (CLI 0.8) or
    ``foundry server status`` (0.10 preview); None if no ``foundry`` CLI or no running service."""
    if not (cli := shutil.which("foundry")):
        return None
    for words in FOUNDRY_STATUS_COMMANDS:
        try:
            out = subprocess.run([cli, *words], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if url := running_service_url(out.stdout + out.stderr):
            return url
    return None


def running_service_url(status_text: str):
    """The service's ``http://host:port`` in a status command's output, unless it says it is not running.

    0.8 prints "Model management service is running on http://127.0.0.1:5273/openai/status"; 0.10 prints
    a table whose "Web URLs" row holds the address. A stopped service may still print an address."""
    if re.search(r"not running|stopped", status_text, re.IGNORECASE):
        return None
    m = re.search(r"https?://[\w.\-]+:\d+", status_text)
    return m.group(0) if m else None


def list_models(base_url: str, api_key=None, timeout: float = 15) -> list:
    """Model ids from ``GET /v1/models``; a down endpoint gives an error that says how to start it."""
    request = urllib.request.Request(f"{base_url}/models",
                                     headers={"Authorization": f"Bearer {api_key or 'not-needed'}"})
    try:
        with clients.urlopen(request, timeout=timeout) as resp:
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
    return ("Run `python -m workshop_lib serve` (embedded server) or start Foundry Local (`foundry service "
            "start`; `foundry server start` from version 0.10), then run this cell again.")


def resolve_roles(backend: str, available: list, base_url: str):
    """``(models, missing)``: each role's model id, or None plus the error to raise when a lesson
    uses it. A role named in a setting must resolve; if no role does, nothing can run: raise."""
    models, missing = {}, {}
    for role in ROLES:
        try:
            models[role] = resolve_model(role_model(role, backend, available, models), available, base_url, role)
        except UnknownModelError as error:
            if setting(f"{role}_model"):
                raise
            models[role], missing[role] = None, _downloaded_hint(error, role, backend, base_url)
    if len(missing) == len(ROLES):
        raise missing[ROLES[0]]
    return models, missing


def _downloaded_hint(error: UnknownModelError, role: str, backend: str, base_url: str) -> UnknownModelError:
    """On a Foundry Local service, prefer a role model it has already downloaded (its ``/openai/models``
    lists the cache): loading it costs no download over the room's Wi-Fi."""
    if backend != "foundry-service":
        return error
    try:
        cached = server.get_json(base_url.removesuffix("/v1") + "/openai/models", "not-needed", timeout=5)
    except (OSError, ValueError):
        return error
    names = [n for n in cached if isinstance(n, str)] if isinstance(cached, list) else []
    if not (alias := next((a for a in DEFAULT_ROLES[backend][role] if _match(a, names)), None)):
        return error
    return UnknownModelError(f"{error.problem} {alias} is downloaded but not loaded.",
                             f"Load it with `foundry model load {alias}`, then run this notebook again.")


def role_model(role: str, backend: str, available: list, taken: dict = None) -> str:
    """The model asked for this role: a setting, else the first preferred model the server serves,
    else (a server with none of ours) the first served model no other role took, else our first choice."""
    if chosen := setting(f"{role}_model"):
        return chosen
    known = backend in DEFAULT_ROLES
    for defaults in [DEFAULT_ROLES[backend]] if known else DEFAULT_ROLES.values():
        for name in defaults[role]:
            if _match(name, available):
                return name
    free = [m for m in available if m not in (taken or {}).values()]
    if free and not known and not _ours(available):
        return free[0]
    return DEFAULT_ROLES[backend if known else "foundry-service"][role][0]


def _ours(available: list) -> bool:
    """True if the server serves one of our preferred models (then the other role's is just missing)."""
    return any(_match(name, available) for roles in DEFAULT_ROLES.values() for names in roles.values()
               for name in names)


def resolve_model(name: str, available: list, base_url: str = "", role: str = "") -> str:
    """The endpoint's id for ``name``: exact, else the shortest id starting with it (Foundry Local
    reports ``qwen2.5-coder-0.5b-instruct-generic-cpu:4`` for alias ``qwen2.5-coder-0.5b``)."""
    if found := _match(name, available):
        return found
    load = (f"with Foundry Local, `foundry model run {name}` (`foundry run {name}` from version 0.10) "
            "downloads and loads it")
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
