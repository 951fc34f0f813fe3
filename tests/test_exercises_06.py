"""Lesson 06's exercises: a request to Open WebUI's own API (judged by behaviour, here against a stand-in
that checks the Bearer token as Open WebUI does), and the overhead judged against apps.webui.overhead_ms."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pandas as pd
import pytest

from workshop_lib import exercises as ex
from workshop_lib.apps import webui
from workshop_lib.exercises import lesson06

TOKEN = "issued-token"


class StandIn(BaseHTTPRequestHandler):
    """POST /api/chat/completions: 401 unless `Authorization: Bearer issued-token`, else an OpenAI-style reply."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path != "/api/chat/completions" or self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"detail": "Not authenticated"})
        else:
            self._send(200, {"choices": [{"message": {"role": "assistant", "content": f"ready ({body['model']})"}}]})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def reference(exercise, name, **namespace):
    exec(ex.solution_source(exercise), namespace)
    return namespace[name]


def test_the_reference_request_passes(stand_in):
    ask = reference("06-webui-chat", "ask_open_webui")
    assert lesson06.webui_chat_judge(stand_in, TOKEN, "m")(ask) is None


def test_a_request_without_the_token_is_rejected_with_the_header_to_send(stand_in):
    def no_token(url, token, model, question):
        r = httpx.post(f"{url}/api/chat/completions", json={"model": model, "messages": []}, trust_env=False)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]
    problem = lesson06.webui_chat_judge(stand_in, TOKEN, "m")(no_token)
    assert problem and "Authorization: Bearer" in problem


def test_returning_the_whole_reply_instead_of_its_text_is_rejected(stand_in):
    def whole_reply(url, token, model, question):
        return httpx.post(f"{url}/api/chat/completions", headers={"Authorization": f"Bearer {token}"},
                          json={"model": model, "messages": []}, trust_env=False).json()
    problem = lesson06.webui_chat_judge(stand_in, TOKEN, "m")(whole_reply)
    assert problem and "returned a dict" in problem


def test_an_answer_that_did_not_go_through_open_webuis_sign_in_is_rejected(stand_in):
    problem = lesson06.webui_chat_judge(stand_in, TOKEN, "m")(lambda url, token, model, question: "ready")
    assert problem and "made-up token" in problem


def results_table():
    """Four pairs: the median of the differences is 125 ms, the difference of the medians 100 ms, the mean 325 ms."""
    ttft = {"direct": [0.10, 0.50, 0.30, 1.00], "open-webui": [0.20, 0.55, 0.45, 2.00]}
    return pd.DataFrame([{"pair": p, "path": path, "ttft_s": ttft[path][p], "e2e_s": ttft[path][p] + 1}
                         for p in range(4) for path in ttft])


def test_overhead_is_the_median_of_the_paired_differences():
    assert webui.overhead_ms(results_table()) == pytest.approx(125.0)
    assert webui.overhead_ms(results_table(), "e2e_s") == pytest.approx(125.0)


def test_the_overheads_interval_brackets_it_and_comes_from_the_pairs():
    low, high = webui.overhead_interval_ms(results_table())
    assert 50.0 <= low <= 125.0 <= high <= 1000.0  # the differences are 100, 50, 150 and 1000 ms
    steady = pd.DataFrame([{"pair": p, "path": path, "ttft_s": p + (0.2 if path == "open-webui" else 0.0)}
                           for p in range(6) for path in ("direct", "open-webui")])
    assert webui.overhead_interval_ms(steady) == pytest.approx((200.0, 200.0))  # pairs vary, differences do not


def test_the_reference_overhead_passes_and_wrong_ones_are_rejected_with_a_reason():
    results = results_table()
    judge = lesson06.overhead_judge(results)
    assert judge(reference("06-overhead", "overhead_ms", results=results, skipped=None)) is None
    medians = results.groupby("path")["ttft_s"].median()
    assert "difference of two medians" in judge((medians["open-webui"] - medians["direct"]) * 1000)
    assert "seconds" in judge(0.125)
    assert "other way round" in judge(-125.0)


def test_when_open_webui_is_skipped_the_reference_overhead_waits():
    assert reference("06-overhead", "overhead_ms", skipped="Open WebUI skipped: ...") is None
