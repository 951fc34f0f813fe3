"""Judges for lesson 00's exercises (00_setup_and_first_chat).

Each ``*_judge`` returns ``judge(answer) -> None | str``: None when the answer is right, else one
sentence saying which case went wrong, what was expected in words, and a hint. Expected values come
from the library (``measure.bench.timing_row``) or from the server itself, never from a formula
written here for the learner to copy.
"""
import math
from types import SimpleNamespace

from ..measure import bench

# (what the case is, start, arrival times of the text pieces, end of the stream, tokens the server counted)
TIMING_CASES = (
    ("5 tokens, one per piece", 0.0, [0.40, 0.45, 0.50, 0.55, 0.60], 0.602, 5),
    ("a slow prefill: the first token after 2 s", 10.0, [12.0, 12.1, 12.2, 12.3], 12.301, 4),
    ("20 tokens arriving in 10 pieces of two", 0.0, [0.3 + 0.05 * i for i in range(10)], 0.752, 20),
)


def reference_timing(start: float, arrivals: list, end: float, tokens: int) -> tuple:
    """``(ttft_s, tpot_s)`` exactly as the course's benchmark computes them from the same clock readings."""
    usage = SimpleNamespace(completion_tokens=tokens, prompt_tokens=None)
    row = bench.timing_row("case", start, arrivals, end, usage, None, "", None)
    return row["ttft_s"], row["tpot_s"]


def timing_judge(cases=TIMING_CASES, rel: float = 0.02):
    """Judge for a learner's ``f(start, arrivals, end, tokens) -> (ttft_s, tpot_s)``, called on ``cases``.

    TPOT may be counted to ``end`` (the benchmark's choice) or to the last piece: the cases put the
    two within ``rel`` of each other, so both pass."""
    def judge(function):
        for what, start, arrivals, end, tokens in cases:
            try:
                got = function(start, list(arrivals), end, tokens)
                ttft, tpot = (float(x) for x in got)
            except NotImplementedError:
                raise
            except Exception as exc:  # the learner's code: say what broke, in which case
                return f"case '{what}': your function raised {type(exc).__name__}: {exc}. It must return (ttft_s, tpot_s)."
            want_ttft, want_tpot = reference_timing(start, arrivals, end, tokens)
            if not math.isclose(ttft, want_ttft, rel_tol=rel, abs_tol=1e-6):
                return (f"case '{what}': TTFT {ttft:.3f} s, expected {want_ttft:.3f} s. "
                        f"{_ttft_hint(ttft, start, arrivals)}")
            if not math.isclose(tpot, want_tpot, rel_tol=rel):
                return (f"case '{what}': TPOT {tpot * 1000:.1f} ms, expected about {want_tpot * 1000:.1f} ms. "
                        f"{_tpot_hint(tpot, start, arrivals, end, tokens)}")
        return None
    return judge


def _ttft_hint(ttft, start, arrivals) -> str:
    if math.isclose(ttft, arrivals[0], rel_tol=1e-6):
        return "Hint: arrival times are clock readings, not durations; measure from the request's start."
    return "Hint: TTFT is the wait from sending the request until the first piece of text arrived."


def _tpot_hint(tpot, start, arrivals, end, tokens) -> str:
    """Name the usual mistakes by the time or the token count the learner's figure implies."""
    if math.isclose(tpot * (tokens - 1), end - start, rel_tol=0.02):
        return "Hint: your time includes the wait before the first token; that wait is TTFT's, not decode's."
    if math.isclose(tpot * tokens, end - arrivals[0], rel_tol=0.02):
        return "Hint: the first token is paid for by TTFT; share the decode time among the tokens after it."
    if math.isclose(tpot * (len(arrivals) - 1), end - arrivals[0], rel_tol=0.02) and len(arrivals) != tokens:
        return "Hint: pieces are not tokens here; count the tokens the server reported, not the pieces."
    return "Hint: TPOT is the time per output token once decoding has started."


def client_judge(base_url: str, model_ids: list, chat_model: str):
    """Judge for a learner's ``openai.OpenAI`` client, by what it does: it must list the same models
    from the same endpoint as ``connect()`` found, and answer a one-token chat with ``chat_model``."""
    def judge(client):
        if not hasattr(client, "models") or not hasattr(client, "chat"):
            return f"my_client is a {type(client).__name__}, not a client: build one with openai.OpenAI(...)."
        own = str(client.base_url).rstrip("/")
        if own != base_url.rstrip("/"):
            return (f"your client talks to {own}, but the endpoint connect() printed is {base_url}. "
                    "Hint: the base URL includes the /v1 at its end.")
        try:
            listed = sorted(m.id for m in client.models.list().data)
        except Exception as exc:
            return f"listing the models failed ({type(exc).__name__}: {_short(exc)}). {_refused_hint(exc)}"
        if listed != sorted(model_ids):
            return f"your client lists {listed}, the endpoint serves {sorted(model_ids)}: is it the same server?"
        try:
            client.chat.completions.create(model=chat_model, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
        except Exception as exc:
            return f"a one-token chat failed ({type(exc).__name__}: {_short(exc)}). {_refused_hint(exc)}"
        return None
    return judge


def _refused_hint(exc) -> str:
    if getattr(exc, "status_code", None) == 401:
        return ("The server refused the key: use the key this server expects (for the embedded server, "
                "the one connect() found, lab.api_key; any text for a server that checks none).")
    return "Hint: check the base URL and that the server is still running."


def _short(exc) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else "no message"
