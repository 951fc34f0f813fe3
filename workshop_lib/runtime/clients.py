"""HTTP clients for model servers: loopback never through a proxy, streams always closed
(taught in 00_setup_and_first_chat).

Company laptops often set ``HTTP_PROXY``/``HTTPS_PROXY`` (or ``ALL_PROXY``) and no ``NO_PROXY``. The
``openai`` client (httpx) and urllib then send even ``http://127.0.0.1:...`` to the proxy, which
cannot reach this machine's loopback: the embedded server looks down although it runs. So every
request to 127.0.0.0/8, ``::1`` or ``localhost`` is made with proxies off, and everything else
(a remote ``WORKSHOP_ENDPOINT``, lesson 05's remote role) keeps the user's proxy settings.
"""
import contextlib
import ipaddress
import os
import urllib.parse
import urllib.request

# What ``no_proxy_environ`` adds for the programs we start (Open WebUI, Chainlit).
NO_PROXY_HOSTS = ("127.0.0.1", "localhost", "::1")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # an empty map: no proxy at all


def is_loopback(url_or_host: str) -> bool:
    """True if ``url_or_host`` (a URL, ``host:port`` or a bare host) names this machine's loopback:
    127.0.0.0/8, ``::1`` or ``localhost``. ``0.0.0.0`` is no address to connect to, so it is not."""
    text = str(url_or_host).strip()
    try:
        host = urllib.parse.urlsplit(text if "://" in text else f"//{text}").hostname
    except ValueError:  # "http://[::1" and the like: no address we could connect to
        return False
    if host is None:  # a bare IPv6 address such as "::1" is no valid netloc
        host = text.strip("[]")
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always this machine
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def urlopen(request, timeout: float):
    """``urllib.request.urlopen`` that connects directly to loopback servers, through the user's
    proxy settings to anything else. ``request`` is a URL or a ``urllib.request.Request``."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    if is_loopback(url):
        return _DIRECT.open(request, timeout=timeout)
    # A new ProxyHandler reads the proxy variables now: urllib's global opener froze them at its first use
    return urllib.request.build_opener(urllib.request.ProxyHandler()).open(request, timeout=timeout)


def openai_client(base_url: str, api_key: str, timeout=None, **options):
    """An ``openai.OpenAI`` client for ``base_url``; for a loopback server its HTTP client ignores
    the proxy variables (``trust_env=False``), for any other it keeps the SDK's defaults."""
    import openai  # here: the process helpers that import this module must not need the SDK
    if timeout is not None:
        options["timeout"] = timeout
    if is_loopback(base_url):
        # DefaultHttpxClient keeps the SDK's own limits and redirects; only the environment is ignored
        own_timeout = {"timeout": timeout} if timeout is not None else {}
        options["http_client"] = openai.DefaultHttpxClient(trust_env=False, **own_timeout)
    return openai.OpenAI(base_url=base_url, api_key=api_key, **options)


def no_proxy_environ(env: dict) -> dict:
    """A copy of ``env`` whose ``NO_PROXY`` and ``no_proxy`` both list the loopback names after the
    user's own entries, for a program we start that calls our servers with its own HTTP clients."""
    existing = [h.strip() for v in (env.get("NO_PROXY"), env.get("no_proxy")) if v for h in v.split(",")]
    hosts = list(dict.fromkeys([h for h in existing if h] + list(NO_PROXY_HOSTS)))
    return {**env, "NO_PROXY": ",".join(hosts), "no_proxy": ",".join(hosts)}


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def exempt_loopback_from_proxies(env=None) -> bool:
    """With a proxy set, add the loopback names to ``NO_PROXY`` in this process's environment, so
    the clients a learner writes (``openai.OpenAI(base_url="http://127.0.0.1:...")``) and the programs a
    notebook starts reach this machine's servers directly, as ours do. True if it changed anything."""
    env = os.environ if env is None else env
    if not any(env.get(v) for v in PROXY_VARIABLES):
        return False
    wanted = no_proxy_environ(dict(env))
    changed = any(env.get(k) != wanted[k] for k in ("NO_PROXY", "no_proxy"))
    env.update({k: wanted[k] for k in ("NO_PROXY", "no_proxy")})
    return changed


@contextlib.contextmanager
def closing(stream):
    """``with closing(stream):`` closes a streamed response however the block ends (an error, Ctrl-C,
    a cancelled task), so the server stops generating in that slot. Anything iterable works: what
    has no ``close()`` (a list of recorded chunks) has nothing to close."""
    try:
        yield stream
    finally:
        if callable(close := getattr(stream, "close", None)):
            close()
