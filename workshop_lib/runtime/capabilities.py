"""What a model server can do beyond the OpenAI API, found by asking it (taught in 00_setup_and_first_chat).

OpenAI-compatible servers differ in the extras a lesson measures with: llama.cpp's ``llama-server``
streams token counts and its own timings, tokenizes text and loads or unloads models over HTTP;
Foundry Local and llama-cpp-python's server do less. A lesson calls ``lab.supports("timings", why)``
and skips, with one printed sentence, what the server cannot do.

We never guess from a server's name: each capability is a small request to the server itself
(about a second in all, once per server and Python process).
"""
import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, fields

from . import clients, server

# What each capability means, for the sentence a skipped section prints.
MEANING = {
    "streamed_usage": "token counts at the end of a streamed answer",
    "timings": "the server's own measurement of its prefill and decode speed",
    "tokenize": "an endpoint that tokenizes text with the model's tokenizer",
    "prompt_cache_control": "a per-request switch for the prompt cache, llama-server's cache_prompt",
    "model_management": "loading and unloading models over HTTP",
    "concurrent_models": "both models kept loaded at once",
    "metrics": "a Prometheus metrics endpoint",
    "completions": "the plain-text /v1/completions endpoint",
    "process_memory": "access to the serving process, to read its memory",
    "structured_output": "output constrained to a JSON schema (response_format)",
}
# The same tiny chat every time (a short system message replaces a template's longer default one).
PROBE_MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Ready?"}]
# How servers spell "follow this JSON schema", tried in this order. llama.cpp (and OpenAI) nest the schema
# under json_schema.schema (a flat "schema" there is ignored silently); Foundry Local takes the schema itself,
# as a JSON string, in json_schema; llama-cpp-python's server reads it beside type "json_object".
STRUCTURED_STYLES = ("json_schema", "json_schema_text", "json_object")
# A value no model writes unprompted: an answer holding it proves the schema constrained the decoding.
PROBE_SCHEMA = {"type": "object", "properties": {"probe": {"type": "string", "enum": ["constrained-7f3a"]}},
                "required": ["probe"]}


@dataclass(frozen=True)
class Capabilities:
    """One boolean per capability; see ``MEANING``."""
    streamed_usage: bool = False
    timings: bool = False
    tokenize: bool = False
    prompt_cache_control: bool = False
    model_management: bool = False
    concurrent_models: bool = False
    metrics: bool = False
    completions: bool = False
    process_memory: bool = False
    structured_output: bool = False


@dataclass(frozen=True)
class Probe:
    """A probe's findings: the capabilities, the tokenize route and the structured-output style
    (one of ``STRUCTURED_STYLES``, "" for none) found, and how long asking took."""
    capabilities: Capabilities
    tokenize_route: str = ""
    seconds: float = 0.0
    structured_style: str = ""


_PROBES = {}  # base_url -> Probe: each notebook (process) asks a server once


def probe(base_url: str, models: list, api_key=None, backend: str = "", refresh: bool = False) -> Probe:
    """Ask the server at ``base_url`` what it can do, using ``models`` (the role models, first one
    used for the test requests). Cached per ``base_url`` for this process."""
    if base_url in _PROBES and not refresh:
        return _PROBES[base_url]
    start = time.perf_counter()
    root, model = base_url.removesuffix("/v1"), models[0]
    usage, timings = _streamed_extras(root, model, api_key)
    route = _tokenize_route(root, model, api_key)
    entries = _model_entries(root, api_key)
    style = _structured_style(root, model, api_key)
    found = Capabilities(
        streamed_usage=usage, timings=bool(timings), tokenize=bool(route),
        prompt_cache_control=timings.get("cache_n") == 0,
        model_management=any(isinstance(e.get("status"), dict) for e in entries),
        concurrent_models=_concurrent(root, models, entries, api_key),
        metrics=_has_metrics(root, model, api_key), completions=_has_completions(root, model, api_key),
        process_memory=backend == "embedded" and _is_embedded(base_url), structured_output=bool(style))
    _PROBES[base_url] = Probe(found, route, time.perf_counter() - start, style)
    return _PROBES[base_url]


def _streamed_extras(root: str, model: str, api_key):
    """One tiny streamed chat asking for ``usage`` and, llama-server style, no prompt cache:
    returns (usage arrived, the ``timings`` dict or {}). A strict server that rejects the extra
    field is asked again without it."""
    body = {"model": model, "messages": PROBE_MESSAGES, "max_tokens": 2,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    for extra in ({"cache_prompt": False}, {}):
        try:
            chunks = _sse(f"{root}/v1/chat/completions", {**body, **extra}, api_key)
        except (OSError, ValueError):
            continue
        usage = any(c.get("usage") and c["usage"].get("completion_tokens") is not None for c in chunks)
        timings = next((c["timings"] for c in reversed(chunks) if isinstance(c.get("timings"), dict)), {})
        return usage, timings
    return False, {}


def _sse(url: str, body: dict, api_key, timeout: float = 60) -> list:
    """POST a streamed request and return its ``data:`` chunks as dicts (until ``[DONE]``)."""
    request = urllib.request.Request(url, json.dumps(body).encode(), _headers(api_key))
    chunks = []
    with clients.urlopen(request, timeout=timeout) as resp:
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunks.append(json.loads(data))
    return chunks


def response_format(style: str, schema: dict, name: str = "reply"):
    """The ``response_format`` that asks a server of ``style`` (see ``STRUCTURED_STYLES``) for JSON
    following ``schema``; None for "" (the server cannot: ask in words instead)."""
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    if style == "json_schema_text":
        return {"type": "json_schema", "json_schema": json.dumps(schema)}
    if style == "json_object":
        return {"type": "json_object", "schema": schema}
    if style:
        raise ValueError(f"style must be one of {STRUCTURED_STYLES} or \"\", not {style!r}")
    return None


def _structured_style(root: str, model: str, api_key) -> str:
    """The first style whose reply follows ``PROBE_SCHEMA`` (so the schema was enforced, not merely
    accepted); "" when none does. A server that rejects a spelling answers 4xx: the next is tried."""
    for style in STRUCTURED_STYLES:
        reply = _post(f"{root}/v1/chat/completions", {
            "model": model, "messages": PROBE_MESSAGES, "max_tokens": 24, "temperature": 0,
            "response_format": response_format(style, PROBE_SCHEMA)}, api_key, timeout=180)
        if _follows_probe_schema(reply):
            return style
    return ""


def _follows_probe_schema(reply: dict) -> bool:
    try:
        content = reply["choices"][0]["message"]["content"]
        return json.loads(content).get("probe") == "constrained-7f3a"
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return False


def structured_style(lab) -> str:
    """How ``lab``'s server takes a JSON schema ("" when it cannot), found by the probe (cached)."""
    served = [m for m in (lab.models or {}).values() if m] or lab.available[:1]
    return probe(lab.base_url, served, lab.api_key, lab.backend).structured_style


def _tokenize_route(root: str, model: str, api_key) -> str:
    """``/tokenize`` (llama-server) or ``/extras/tokenize`` (llama-cpp-python), whichever answers
    with token ids; "" when neither does."""
    for route, body in (("/tokenize", {"model": model, "content": "Hello world"}),
                        ("/extras/tokenize", {"model": model, "input": "Hello world"})):
        tokens = _post(root + route, body, api_key).get("tokens")
        if isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens):
            return route
    return ""


def count_tokens(root: str, route: str, model: str, text: str, api_key=None) -> int:
    """Tokens in ``text`` by the model's own tokenizer, asked over ``route`` (see ``_tokenize_route``).
    No special tokens are added: this counts what the model generated, as ``usage`` would."""
    body = ({"model": model, "content": text, "add_special": False} if route == "/tokenize"
            else {"model": model, "input": text})
    return len(server.post_json(root + route, body, api_key)["tokens"])


def _model_entries(root: str, api_key) -> list:
    data = _get(f"{root}/v1/models", api_key).get("data")
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _concurrent(root: str, models: list, entries: list, api_key) -> bool:
    """True when the server shows it keeps several models at once: a llama-server router allowing
    two or more instances, or every role model reported as loaded (per-model status, or Foundry
    Local's ``/openai/loadedmodels``). Listing several ids proves nothing: some servers reload."""
    props = _get(f"{root}/props", api_key)
    if props.get("role") == "router" and int(props.get("max_instances") or 0) >= min(2, len(set(models))):
        return True
    loaded = {e.get("id") for e in entries if (e.get("status") or {}).get("value") == "loaded"}
    if set(models) <= loaded:
        return True
    listed = _get(f"{root}/openai/loadedmodels", api_key, default=[])
    return isinstance(listed, list) and set(models) <= set(listed)


def _has_metrics(root: str, model: str, api_key) -> bool:
    """A Prometheus text page at ``/metrics`` (a router wants ``?model=``; others ignore it)."""
    url = f"{root}/metrics?" + urllib.parse.urlencode({"model": model})
    try:
        with clients.urlopen(urllib.request.Request(url, headers=_headers(api_key)), timeout=10) as resp:
            text = resp.read(4096).decode("utf-8", "replace")
    except (OSError, ValueError):
        return False
    return "# TYPE" in text or "# HELP" in text


def _has_completions(root: str, model: str, api_key) -> bool:
    answer = _post(f"{root}/v1/completions", {"model": model, "prompt": "Hello", "max_tokens": 1}, api_key)
    return isinstance(answer.get("choices"), list) and bool(answer["choices"])


def _is_embedded(base_url: str) -> bool:
    """True if ``base_url`` is the embedded llama-server this installation started (we know its PID)."""
    info = server.running_server()
    return bool(info) and info.base_url == base_url


def _headers(api_key) -> dict:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {api_key or 'not-needed'}"}


def _post(url: str, body: dict, api_key, timeout: float = 30) -> dict:
    """POST JSON; the answer as a dict, or {} when the route is missing or fails."""
    try:
        answer = server.post_json(url, body, api_key or "not-needed", timeout)
    except (OSError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


def _get(url: str, api_key, default=None, timeout: float = 10):
    """GET JSON; ``default`` ({} unless given) when the route is missing or fails."""
    try:
        return server.get_json(url, api_key or "not-needed", timeout)
    except (OSError, ValueError):
        return {} if default is None else default


def names() -> list:
    """The capability names ``supports()`` accepts."""
    return [f.name for f in fields(Capabilities)]
