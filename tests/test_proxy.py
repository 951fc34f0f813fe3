"""Loopback traffic never goes through a proxy; remote traffic still does (issue 17, point 2).

A company laptop sets HTTP_PROXY/HTTPS_PROXY (or ALL_PROXY) and no NO_PROXY. ``proxy`` below is such a
proxy on 127.0.0.1: it records every request line it gets and answers 502 (a proxy that cannot reach
this machine's loopback), except for the host ``remote-model.invalid``, which only it can "resolve".
"""
import json
import socketserver
import threading
from types import SimpleNamespace

import pytest
from conftest import needs_server

from workshop_lib.apps import chainlit_app, webui
from workshop_lib.measure import bench
from workshop_lib.routing import fallback
from workshop_lib.runtime import capabilities, clients, endpoint, process, server

PROXY_VARIABLES = clients.PROXY_VARIABLES  # every variable a proxy may be set in
REMOTE = "http://remote-model.invalid:8080/v1"  # .invalid never resolves (RFC 2606): only the proxy knows it
MODELS = json.dumps({"object": "list", "data": [{"id": "remote-m", "object": "model"}]}).encode()


class RecordingProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.request_lines = []
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode("latin-1").strip()
        self.server.request_lines.append(line)
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # the headers
        if "remote-model.invalid" in line and "/models" in line:
            status, body = "200 OK", MODELS
        else:
            status, body = "502 Bad Gateway", b"this proxy cannot reach your machine"
        self.wfile.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)


@pytest.fixture
def proxy(monkeypatch):
    """Every proxy variable points at the recording proxy; no NO_PROXY, as on many company laptops."""
    proxy = RecordingProxy()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    for variable in PROXY_VARIABLES:
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.server_address[1]}")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    yield proxy
    proxy.shutdown()
    proxy.server_close()


class FakeModelServer(socketserver.ThreadingTCPServer):
    """A loopback "model server" that answers every GET with a model list and POST with a JSON answer."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeModelHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeModelHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode("latin-1")
        length = 0
        while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        self.rfile.read(length)
        body = MODELS if line.startswith("GET") else b'{"tokens": [1, 2]}'
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


@pytest.fixture
def local_server():
    fake = FakeModelServer()
    yield fake
    fake.shutdown()
    fake.server_close()


# ---------------------------------------------------------------- the decision

@pytest.mark.parametrize("address", ["http://127.0.0.1:8080/v1", "127.5.5.5:9", "http://localhost:5273",
                                     "LOCALHOST", "http://[::1]:8080/v1", "::1", "http://app.localhost:1/"])
def test_loopback_addresses_are_reached_directly(address):
    assert clients.is_loopback(address)


@pytest.mark.parametrize("address", ["http://0.0.0.0:8080", "http://example.com/v1", "10.0.0.5:8080",
                                     "http://[2001:db8::1]:80", "http://127.0.0.1.example.com", REMOTE, "",
                                     "http://[::1"])
def test_other_addresses_keep_the_proxy(address):
    assert not clients.is_loopback(address)


def test_apps_get_loopback_in_no_proxy_after_the_users_own_entries():
    env = clients.no_proxy_environ({"NO_PROXY": "corp.example, .intra", "PATH": "/bin"})
    assert env["NO_PROXY"] == env["no_proxy"] == "corp.example,.intra,127.0.0.1,localhost,::1"
    assert env["PATH"] == "/bin"
    assert clients.no_proxy_environ({})["no_proxy"] == "127.0.0.1,localhost,::1"


# ---------------------------------------------------------------- every loopback client, no model needed

def test_every_loopback_helper_bypasses_the_proxy(proxy, local_server):
    root = local_server.root
    assert endpoint.list_models(f"{root}/v1", "k") == ["remote-m"]  # connect()'s first request
    assert [m.id for m in clients.openai_client(f"{root}/v1", "k").models.list()] == ["remote-m"]
    assert server.get_json(f"{root}/v1/models", "k")["data"] and server.post_json(f"{root}/tokenize", {}, "k")
    assert capabilities._get(f"{root}/props", "k") and process._healthy(f"{root}/health")
    assert fallback.client_for(f"http://localhost:{local_server.server_address[1]}/v1", "k").models.list().data
    assert proxy.request_lines == []


def test_a_client_the_learner_builds_reaches_loopback_once_connect_has_exempted_it(proxy, local_server):
    import openai
    def learners_client(base_url):  # what lesson 00 teaches a learner to write, proxies read from the environment
        return openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.APIStatusError):  # the dead proxy answers 502 for our own machine
        learners_client(f"{local_server.root}/v1").models.list()
    assert clients.exempt_loopback_from_proxies() is True  # what connect() does first
    assert [m.id for m in learners_client(f"{local_server.root}/v1").models.list()] == ["remote-m"]
    assert [m.id for m in learners_client(REMOTE).models.list()] == ["remote-m"]  # a remote one: still proxied
    assert len(proxy.request_lines) == 2 and REMOTE in proxy.request_lines[-1]
    assert clients.exempt_loopback_from_proxies() is False  # idempotent


def test_a_remote_endpoint_still_goes_through_the_proxy(proxy):
    assert endpoint.list_models(REMOTE, "k") == ["remote-m"]
    assert [m.id for m in fallback.client_for(REMOTE, "k").models.list()] == ["remote-m"]  # lesson 05's remote
    assert proxy.request_lines == [f"GET {REMOTE}/models HTTP/1.1"] * 2


def test_a_proxy_set_after_urllibs_first_request_is_still_honoured(monkeypatch):
    """urllib's global opener reads the proxy variables once, at its first use: a remote endpoint
    asked later (a kernel that set HTTPS_PROXY after a first cell) must still go through the proxy."""
    import urllib.request
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=2)  # builds the global opener, no proxy
    recording = RecordingProxy()
    threading.Thread(target=recording.serve_forever, daemon=True).start()
    try:
        for variable in PROXY_VARIABLES:
            monkeypatch.setenv(variable, f"http://127.0.0.1:{recording.server_address[1]}")
        assert endpoint.list_models(REMOTE, "k") == ["remote-m"]
        assert recording.request_lines == [f"GET {REMOTE}/models HTTP/1.1"]
    finally:
        recording.shutdown()
        recording.server_close()


def test_the_apps_we_start_get_no_proxy_for_loopback(proxy, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("NO_PROXY", "corp.example")
    started = []

    def record_start(name, cmd, **kwargs):
        started.append(kwargs["env"])
        return SimpleNamespace(url="http://127.0.0.1:1", pid=1, port=1, extra={}, log="log")
    monkeypatch.setattr(process, "start", record_start)
    monkeypatch.setattr(endpoint, "list_models", lambda *a, **k: ["m"])
    monkeypatch.setattr(chainlit_app, "_require_chainlit", lambda: None)
    monkeypatch.setattr(webui, "is_installed", lambda: True)
    monkeypatch.setattr(webui, "ensure_admin", lambda url: None)
    lab = SimpleNamespace(base_url="http://127.0.0.1:9/v1", api_key="k", models={"slm": "m"}, available=["m"])
    chainlit_app.start(lab)
    webui.start(lab, progress=False)
    for env in started:
        assert env["NO_PROXY"] == env["no_proxy"] == "corp.example,127.0.0.1,localhost,::1"
    assert len(started) == 2


# ---------------------------------------------------------------- the real embedded server

@pytest.fixture
def no_endpoint_settings(monkeypatch):
    for variable in (*endpoint.ENDPOINT_VARIABLES, "WORKSHOP_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(endpoint, "foundry_service_url", lambda: None)


def chat_once(lab) -> dict:
    return bench.stream_once(lab.client, lab.slm, [{"role": "user", "content": "Say hello."}], max_tokens=8)


@pytest.mark.server
@needs_server
def test_connect_and_chat_through_a_dead_proxy_on_each_backend_kind(proxy, no_endpoint_settings, monkeypatch):
    """What every lesson's first connecting cell does: ``wl.connect()`` (which starts or finds the
    embedded server and probes it), then one chat; once as ``embedded``, once as ``environment``."""
    embedded = endpoint.connect(verbose=True)  # verbose: the capability probe's requests too
    row = chat_once(embedded)
    assert embedded.backend == "embedded" and row["status"] == "ok" and row["text"], row
    port = embedded.base_url.split(":")[2].split("/")[0]
    monkeypatch.setenv("WORKSHOP_ENDPOINT", f"http://localhost:{port}")
    named = endpoint.connect(verbose=False)
    row = chat_once(named)
    assert named.backend == "environment" and row["status"] == "ok" and row["text"], row
    assert proxy.request_lines == []
