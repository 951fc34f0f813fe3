"""Judges of lesson 06's exercises (06_open_webui).

- ``06-webui-chat``: the learner's request to Open WebUI's own API, ``ask_open_webui(url, token, model,
  question) -> str``, judged by what it does: it must bring back an answer with the token it is given, and
  fail with a made-up one (so the request really went through Open WebUI's authentication);
- ``06-overhead``: the learner's median paired difference, compared with ``apps.webui.overhead_ms``.
"""
import numpy as np

from ..apps import webui

QUESTION = "Reply with one word: ready."
MADE_UP_TOKEN = "not-a-token-open-webui-issued"


def refused(error: Exception) -> bool:
    """An HTTP 401/403 from Open WebUI, whichever client the learner used raised it."""
    text = f"{type(error).__name__} {error}"
    return any(word in text for word in ("401", "403", "Unauthorized", "Forbidden", "Authentication",
                                         "PermissionDenied", "Not authenticated"))


def webui_chat_judge(url: str, token: str, model: str):
    """A judge for ``ask_open_webui``, run against the Open WebUI at ``url`` with a token it issued."""
    def judge(function):
        if not callable(function):
            return f"ask_open_webui should be a function (def ...), not {type(function).__name__}."
        try:
            answer = function(url, token, model, QUESTION)
        except NotImplementedError:
            raise
        except Exception as error:
            if refused(error):
                return (f"Open WebUI refused the request ({type(error).__name__}: {str(error)[:120]}). Send the token "
                        "in the header `Authorization: Bearer <token>`.")
            raise
        if not isinstance(answer, str):
            return (f"it returned a {type(answer).__name__}; return the answer's text, a str (in the OpenAI format "
                    "it is the first choice's message content).")
        if not answer.strip():
            return "it returned an empty answer: did you read the message content of the first choice?"
        try:
            function(url, MADE_UP_TOKEN, model, QUESTION)
        except Exception:
            return None  # refused without a valid token: the request went through Open WebUI's sign-in check
        return ("with a made-up token it still got an answer, so the request did not go through Open WebUI's "
                f"sign-in check: send it to {url}/api/chat/completions with the token given.")
    return judge


def overhead_judge(results):
    """A judge for ``overhead_ms``: ``webui.overhead_ms(results, "ttft_s")`` within 0.01 ms."""
    expected = webui.overhead_ms(results, "ttft_s")

    def judge(answer):
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return f"overhead_ms should be a number of milliseconds, not {type(answer).__name__}."
        if np.isclose(value, expected, rtol=1e-6, atol=1e-2):
            return None
        if np.isclose(value * 1000, expected, rtol=1e-6, atol=1e-2):
            return "that looks like seconds: the exercise asks for milliseconds."
        if np.isclose(value, -expected, rtol=1e-6, atol=1e-2):
            return "the sign is the other way round: through Open WebUI minus direct (positive if the UI is slower)."
        return (f"overhead_ms = {value:.2f} ms is not the median of the differences within pairs. Take each pair's "
                "difference first, then the median of those differences (not the difference of two medians, "
                "nor a mean).")
    return judge
