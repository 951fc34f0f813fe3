"""Lesson 00's judges reject the usual wrong answers with a hint, and accept the right ones (no server)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest

from workshop_lib.exercises import lesson00

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def solution(name: str, **namespace) -> dict:
    """Run a reference solution file the way the notebook cell would, in ``namespace``."""
    exec(compile((SOLUTIONS / f"{name}.py").read_text(), name, "exec"), namespace)
    return namespace


def test_reference_solution_of_tpot_passes():
    assert lesson00.timing_judge()(solution("00-tpot")["ttft_and_tpot"]) is None


def test_tpot_counted_to_the_last_piece_also_passes():
    def to_last_piece(start, arrivals, end, tokens):
        return arrivals[0] - start, (arrivals[-1] - arrivals[0]) / (tokens - 1)
    assert lesson00.timing_judge()(to_last_piece) is None


def test_tpot_that_includes_the_ttft_is_rejected_with_a_hint():
    def with_ttft(start, arrivals, end, tokens):
        return arrivals[0] - start, (end - start) / (tokens - 1)
    message = lesson00.timing_judge()(with_ttft)
    assert message and "TPOT" in message and "wait before the first token" in message


def test_tpot_divided_by_all_tokens_is_rejected_with_a_hint():
    def all_tokens(start, arrivals, end, tokens):
        return arrivals[0] - start, (end - arrivals[0]) / tokens
    message = lesson00.timing_judge()(all_tokens)
    assert message and "tokens after it" in message


def test_tpot_from_pieces_instead_of_tokens_is_rejected():
    def per_piece(start, arrivals, end, tokens):
        return arrivals[0] - start, (end - arrivals[0]) / (len(arrivals) - 1)
    message = lesson00.timing_judge()(per_piece)
    assert message and "20 tokens arriving in 10 pieces" in message and "pieces are not tokens" in message


def test_ttft_as_a_clock_reading_is_rejected():
    def clock(start, arrivals, end, tokens):
        return arrivals[0], (end - arrivals[0]) / (tokens - 1)
    message = lesson00.timing_judge()(clock)
    assert message and "slow prefill" in message and "clock readings" in message


def test_a_function_that_breaks_is_reported_not_raised():
    assert "raised ZeroDivisionError" in lesson00.timing_judge()(lambda s, a, e, t: (0, 1 / 0))
    assert "must return (ttft_s, tpot_s)" in lesson00.timing_judge()(lambda s, a, e, t: None)


def test_not_implemented_reaches_the_framework():
    def placeholder(start, arrivals, end, tokens):
        raise NotImplementedError("write this")
    with pytest.raises(NotImplementedError):
        lesson00.timing_judge()(placeholder)


def test_reference_timing_is_the_benchmarks_own():
    ttft, tpot = lesson00.reference_timing(1.0, [1.5, 1.6, 1.7], 1.7, 3)
    assert ttft == pytest.approx(0.5) and tpot == pytest.approx(0.1)


KEY = "the-right-key"


@pytest.fixture
def tiny_server():
    """A loopback HTTP server that answers /v1/models and /v1/chat/completions for one key, as the
    embedded server does: enough to test the judge by behaviour without a model."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self):
            if self.headers.get("Authorization") == f"Bearer {KEY}":
                return True
            self.reply(401, {"error": {"message": "Invalid API Key", "type": "authentication_error"}})
            return False

        def do_GET(self):
            if self.authorized():
                self.reply(200, {"object": "list", "data": [{"id": "m1", "object": "model"}]})

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.authorized():
                self.reply(200, {"id": "c", "object": "chat.completion", "created": 0, "model": "m1", "choices": [
                    {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi"}}]})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def client(base_url, key=KEY):
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=5)


def test_reference_solution_of_the_client_passes(tiny_server):
    from types import SimpleNamespace
    lab = SimpleNamespace(base_url=tiny_server, api_key=KEY)
    built = solution("00-client", lab=lab)["my_client"]
    assert lesson00.client_judge(tiny_server, ["m1"], "m1")(built) is None


def test_a_client_with_the_wrong_key_is_told_where_the_key_comes_from(tiny_server):
    message = lesson00.client_judge(tiny_server, ["m1"], "m1")(client(tiny_server, "not-needed"))
    assert message and "refused the key" in message and "lab.api_key" in message


def test_a_client_without_v1_is_told_so(tiny_server):
    message = lesson00.client_judge(tiny_server, ["m1"], "m1")(client(tiny_server.removesuffix("/v1")))
    assert message and "/v1" in message


def test_a_client_of_another_server_is_rejected(tiny_server):
    message = lesson00.client_judge(tiny_server, ["m1", "m2"], "m1")(client(tiny_server))
    assert message and "same server" in message


def test_something_that_is_not_a_client_is_rejected():
    message = lesson00.client_judge("http://127.0.0.1:1/v1", ["m1"], "m1")("http://127.0.0.1:1/v1")
    assert message and "not a client" in message
