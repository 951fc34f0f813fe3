"""The RAG chat app of lesson 04 in Chainlit: its launcher, and the noise its file leaves out (taught in 04_rag).

The app is the learner's file ``notebooks/apps/rag_chat.py`` (``SCRIPT``). ``start(lab)`` runs
``chainlit run <file> --host 127.0.0.1 --port N`` on it, as a learner would outside the notebook, pointed at
exactly the endpoint and key of ``lab`` (the notebook's ``wl.connect()``), and returns its URL; ``stop()``
ends it. Chainlit writes ``.chainlit/``, ``.files/`` and ``chainlit.md`` into its working directory, so it
runs from ``cache_dir()/chainlit``, never from the repository. This module does not import Chainlit
(importing it writes those folders into the current directory); the helpers the app file calls take
what they need from it as arguments. Where ``requirements-rag.txt`` installs no Chainlit (its pin's marker
excludes this Python: 2.12.0 declares Requires-Python <3.14), ``skipped()`` is the one sentence the lesson
prints instead of starting the app, and ``start`` raises ``ChainlitNotSupported`` with it.

    python -m workshop_lib.apps.chainlit_app start [--port N] | status | stop
"""
import argparse
import asyncio
import hashlib
import importlib.util
import os
import sys
import time
import shutil
import unicodedata
from pathlib import Path

import openai

from .. import extras
from ..config import REPO_ROOT, cache_dir, setting, write_atomic
from ..errors import WorkshopError
from ..rag.answer import NOT_FOUND
from ..runtime import clients, endpoint, process
from ..runtime.server import HOST, choose_app_port

NAME = "chainlit"  # the process record's name (cache_dir()/procs/chainlit.json)
SCRIPT = REPO_ROOT / "notebooks" / "apps" / "rag_chat.py"  # the learner's app file
REQUIREMENTS = REPO_ROOT / "requirements-rag.txt"  # where Chainlit is pinned (with the Pythons it installs on)
SKIPPED_EXIT = 3  # `chainlit_app start`'s exit code when this Python gets no Chainlit (as `webui install`'s)
MAX_QUESTION_CHARS = 2000  # a pasted log or book would crowd the sources out of a small model's context
WELCOME = """# Ask the llama.cpp documentation

Answers come from the model you pick in the settings (gear icon), grounded in passages retrieved from
the Markdown documentation of llama.cpp (MIT licence) that the workshop's setup downloaded.
Each answer lists the sources it cites as [1], [2], ...: click one to read the passage it came from.
When the documentation does not answer the question, the app says **Not in the docs** instead of guessing.
"""


# ---------------------------------------------------------------- what the app does with a message

def clean_question(text, elements=None) -> tuple:
    """``(question, notes)``: the text without control characters, cut to ``MAX_QUESTION_CHARS``;
    ``notes`` says what was changed or ignored (attached ``elements``), so nothing is dropped silently."""
    text = text if isinstance(text, str) else ""
    kept = "".join(c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C").strip()
    notes = []
    if len(kept) > MAX_QUESTION_CHARS:
        notes.append(f"Your message had {len(kept):,} characters; only the first {MAX_QUESTION_CHARS:,} were used.")
        kept = kept[:MAX_QUESTION_CHARS].rstrip()
    if note := attachment_note(elements):
        notes.append(note)
    return kept, notes


def attachment_note(elements) -> str:
    """One sentence naming ignored attachments (files, images, audio), or "" when there are none."""
    names = [getattr(e, "name", None) or "a file" for e in elements or []]
    if not names:
        return ""
    return (f"Attachments are not read ({', '.join(names)}): this app answers from the llama.cpp "
            "documentation only. Type your question as text.")


EMPTY_HINT = ("Type a question about llama.cpp, for example: Which llama-server option sets the number "
              "of parallel slots?")


def source_label(chunk) -> str:
    """``path › heading``: where a passage comes from, as the citation list shows it."""
    return f"{chunk.path} › {chunk.heading}" if chunk.heading else str(chunk.path)


def passage(chunk) -> str:
    """What the side panel shows when a source is clicked: where it comes from, then its text."""
    return f"**{source_label(chunk)}**\n\n{chunk.text}"


NOT_IN_DOCS = "**Not in the docs.**"
HOW_CITED = {True: "cited by constrained JSON", False: "cited on a Sources line"}


def not_found(hits, why: str, said: str = "") -> str:
    """The refusal: a clear badge, the sentence (unless the model already ``said`` it, streamed above),
    why, and the closest passage's similarity (what the threshold compares)."""
    best = max((score for _chunk, score in hits), default=None)
    closest = f"; the closest passage scored {best:.2f}" if best is not None else ""
    sentence = "" if "could not find this" in said.lower() else f" {NOT_FOUND}"
    return ("\n\n" if said else "") + f"{NOT_IN_DOCS}{sentence} *({why}{closest})*"


def why_refused(result: dict) -> str:
    """Why the model's reply became a refusal: it said so, or it named terms no passage contains."""
    if terms := result.get("unsupported"):
        return f"the answer named {', '.join(terms)}, which no passage contains, so it was withheld"
    return "the model found no answer in the passages"


def refusal(notes: list, hits, result: dict) -> str:
    """The whole message of a refusal after the model was asked: it replaces what was streamed (an
    answer withheld by ``rag.refusal.withhold_unsupported`` must not stay on screen), notes kept."""
    return "".join(f"*{note}*\n\n" for note in notes) + not_found(hits, why_refused(result))


def footer(lines: list, result: dict, model, seconds: float) -> str:
    """Under an answer: the sources it cites, the others retrieved, then which model answered (None:
    refused before asking one), how long it took, and how the citations were obtained. ``lines[n - 1]``
    describes source ``n``."""
    cited = result.get("citations") or []
    parts = []
    if cited:
        parts.append("**Sources cited**\n" + "\n".join(f"- {lines[n - 1]}" for n in cited))
    others = [line for n, line in enumerate(lines, start=1) if n not in cited]
    if others:
        title = "Passages searched" if result.get("refused") else "Also retrieved (not cited)"
        parts.append(f"**{title}**\n" + "\n".join(f"- {line}" for line in others))
    if model is None:
        who, how = "no model asked", "refused by the similarity threshold"
    elif result.get("refused"):
        who, how = model, "withheld: unsupported terms" if result.get("unsupported") else "refused by the model"
    else:
        who, how = model, HOW_CITED[bool(result.get("structured"))]
    return "\n\n" + "\n\n".join(parts) + f"\n\n*{who} · {seconds:.1f} s · {how}*"


def down_message(error: Exception) -> str:
    """What the chat shows when the model endpoint does not answer: what happened and what to do."""
    problem = getattr(error, "problem", None) or f"The model endpoint did not answer ({error})."
    fix = getattr(error, "fix", None) or "Start the model server again."
    return f"**The model endpoint is not answering.** {problem}\n\n{fix} Then send your question again."


def error_message(error: Exception) -> str:
    """What the chat shows when a request fails: the endpoint is down, or it refused this request."""
    if isinstance(error, (openai.APIConnectionError, openai.APITimeoutError)):
        return down_message(error)
    return (f"**The model server refused the request** ({error}). Pick another model in the settings, "
            "or ask a shorter question.")


async def connect_or_say(cl):
    """The endpoint (``WORKSHOP_ENDPOINT``/``WORKSHOP_API_KEY``, else ``connect()``'s choice) kept in the
    chat's session with the model to use; None after telling the user it is down. ``cl`` is chainlit."""
    try:
        lab = await asyncio.to_thread(endpoint.connect, False)
    except WorkshopError as exc:
        await cl.Message(content=down_message(exc)).send()
        return None
    cl.user_session.set("lab", lab)
    if cl.user_session.get("model") not in lab.available:
        cl.user_session.set("model", default_model(lab))
    return lab


def default_model(lab) -> str:
    """The model picked at first: the notebook's ``slm`` if the server serves it, else its first model."""
    preferred = os.environ.get("WORKSHOP_CHAINLIT_MODEL") or (lab.models or {}).get("slm")
    return preferred if preferred in lab.available else lab.available[0]


async def stream_tokens(stream):
    """Text deltas of a (blocking) OpenAI stream, read in a worker thread so the app stays responsive."""
    done = object()
    chunks = iter(stream)
    while (chunk := await asyncio.to_thread(next, chunks, done)) is not done:
        if chunk.choices and (token := chunk.choices[0].delta.content):
            yield token


async def in_thread(iterable):
    """The items of a blocking iterable (a ``rag.CitedAnswer``), each read in a worker thread so the
    app keeps serving other chats while the model decodes."""
    done = object()
    items = iter(iterable)
    while (item := await asyncio.to_thread(next, items, done)) is not done:
        yield item


async def stream_reply(stream, send_token) -> None:
    """``await send_token(text)`` for each delta of ``stream``. The stream is closed however this ends:
    an error, or the task cancelled because the browser tab closed; the server then stops generating."""
    with clients.closing(stream):
        async for token in stream_tokens(stream):
            await send_token(token)


# ---------------------------------------------------------------- launcher

def home() -> Path:
    """``cache_dir()/chainlit``: Chainlit's working directory (its config, uploads and log)."""
    path = cache_dir() / "chainlit"
    path.mkdir(parents=True, exist_ok=True)
    return path


class ChainlitNotSupported(WorkshopError):
    """This Python gets no Chainlit: requirements-rag.txt's pin excludes it by its marker. Its text is
    ``skipped()``'s one sentence, which already says what to do."""

    def __init__(self, sentence: str):
        super().__init__(sentence, FIX)

    def __str__(self) -> str:
        return self.problem  # the sentence already names the fix: no second "What to do" line


FIX = "use Python 3.13 or older (everything else in lesson 04 runs on this one)"


def skipped(requirements=None):
    """The one sentence that says the Chainlit app is skipped here and what to do, when Chainlit is not
    installed because its pin's marker excludes this Python; None when it is installed or should be."""
    if importlib.util.find_spec("chainlit") is not None:
        return None
    pin = next((p for p in extras.skipped_pins(Path(requirements or REQUIREMENTS)) if p[0].lower() == "chainlit"), None)
    if pin is None:
        return None
    name, version, marker = pin
    return (f"Chainlit app skipped: requirements-rag.txt installs {name} {version} only where {marker}, the "
            f"Pythons it supports (Chainlit/chainlit#2828), so Python {extras.python_version()} has none; to run "
            f"lesson 04's chat app, {FIX}.")


def _require_chainlit() -> None:
    if sentence := skipped():
        raise ChainlitNotSupported(sentence)
    if importlib.util.find_spec("chainlit") is None:
        raise WorkshopError("Chainlit is not installed in this environment.",
                            "Run `wl.require(\"rag\")` in the notebook (or `pip install -r requirements-rag.txt`), "
                            "then start the app again.")


def _serving(lab, script: Path) -> dict:
    """What a running app must match to be reused: the app file, the endpoint and (a digest of) its key."""
    return {"endpoint": lab.base_url, "key_sha256": hashlib.sha256((lab.api_key or "").encode()).hexdigest(),
            "script": str(script)}


def start(lab=None, port=None, *, script=None, check_endpoint: bool = True, ready_timeout: float = 90) -> str:
    """Start the app file ``script`` (default: ``SCRIPT``, lesson 04's) on ``lab``'s endpoint (default:
    ``connect()``) and return its URL; an app already serving that file and endpoint is reused. A down
    endpoint is an error unless ``check_endpoint=False`` (then the app itself says it is down)."""
    _require_chainlit()
    script = Path(script).resolve() if script else SCRIPT
    if not script.is_file():
        raise WorkshopError(f"There is no app file at {script}.",
                            "Pass the path of a Chainlit app file, e.g. notebooks/apps/rag_chat.py.")
    lab = lab or endpoint.connect(verbose=False)
    if check_endpoint:
        endpoint.list_models(lab.base_url, lab.api_key)
    serving = _serving(lab, script)
    with process.lock(NAME):  # the whole check-stop-start: another kernel cannot stop this one's app
        record = process.running(NAME)
        if record and all(record.extra.get(k) == v for k, v in serving.items()) and port in (None, record.port):
            return record.url
        stop()  # one serving another endpoint or port: restart it
        port = _free_port(port or setting("chainlit_port"))
        folder = home()
        write_atomic(folder / "chainlit.md", WELCOME)  # Chainlit's welcome screen, instead of its default text
        launch = command(port) if script == SCRIPT else command(port, script)
        record = process.start(NAME, launch, port=port, health_url=f"http://{HOST}:{port}/",
                               log=folder / "chainlit.log", env=_environment(lab, folder), cwd=folder,
                               ready_timeout=ready_timeout, extra=serving)
        return record.url


def command(port: int, script: Path = SCRIPT) -> list:
    """``chainlit run <script> --host 127.0.0.1 --port <port>``, the command a learner types, with this
    environment's ``chainlit`` and ``--headless`` (the notebook prints the link instead of opening a tab)."""
    chainlit = shutil.which("chainlit", path=str(Path(sys.executable).parent))
    program = [chainlit] if chainlit else [sys.executable, "-m", "chainlit"]
    return program + ["run", str(script), "--host", HOST, "--port", str(port), "--headless"]


def _environment(lab, folder: Path) -> dict:
    """The app's environment: ``lab``'s endpoint and key, and no proxy for this machine's servers
    (the user's NO_PROXY kept, loopback added), whatever HTTP client a library inside it uses."""
    return clients.no_proxy_environ({
        **os.environ, "WORKSHOP_ENDPOINT": lab.base_url, "WORKSHOP_API_KEY": lab.api_key or "",
        "WORKSHOP_CHAINLIT_MODEL": (getattr(lab, "models", None) or {}).get("slm") or "",
        "CHAINLIT_APP_ROOT": str(folder), "PYTHONUNBUFFERED": "1"})



def _free_port(port) -> int:
    return choose_app_port(port, "WORKSHOP_CHAINLIT_PORT")


def stop() -> bool:
    """Stop the app (only the process this workshop started); True if it was running."""
    return process.stop(NAME)


def status() -> str:
    record = process.running(NAME)
    if record is None:
        return "The Chainlit app is not running."
    return f"The Chainlit app runs at {record.url} (pid {record.pid}) on {record.extra.get('endpoint')}; log: {record.log}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.apps.chainlit_app",
                                     description="The RAG chat app of lesson 04 (Chainlit), on 127.0.0.1.")
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=int, default=None, help="default: WORKSHOP_CHAINLIT_PORT, else any free port")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            started = time.perf_counter()
            url = start(port=args.port)
            print(f"The Chainlit app runs at {url} (ready after {time.perf_counter() - started:.1f} s). "
                  "Stop it with `python -m workshop_lib.apps.chainlit_app stop`.")
        elif args.command == "stop":
            print("Stopped the Chainlit app." if stop() else "The Chainlit app was not running.")
        else:
            print(status())
    except ChainlitNotSupported as exc:  # not a failure: this Python gets no Chainlit, and it says so
        print(exc.problem)
        return SKIPPED_EXIT
    except WorkshopError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
