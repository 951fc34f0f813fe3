"""The Chainlit RAG app of lesson 04: its message handling, its launcher, and the app in a real browser.

The browser tests start the app against the real endpoint (``wl.connect()``) and the real retrieval
module, drive it with Debian's chromium, and keep a screenshot in results/screenshots/.
"""
import importlib.util
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass
from types import SimpleNamespace

import psutil
import pytest
from browser import chromium_page, save_screenshot
from conftest import connect_or_skip

from workshop_lib.apps import chainlit_app as app
from workshop_lib.config import DATA_DIR
from workshop_lib.errors import EndpointError, PortInUseError, WorkshopError
from workshop_lib.runtime import process

# Chainlit is absent: this Python gets none (the lesson's one sentence), or the rag extra is not installed yet
NO_CHAINLIT = app.skipped() or "pip install -r requirements-rag.txt (lesson 04's extra)"
needs_chainlit = pytest.mark.skipif(importlib.util.find_spec("chainlit") is None, reason=NO_CHAINLIT)
FALLBACK_QUESTION = "Which llama-server option sets the number of parallel slots?"
ANSWER = ".step[data-step-type='assistant_message']"


@dataclass
class Chunk:  # the shape of rag.Chunk, for the tests that need no index
    id: str
    path: str
    heading: str
    text: str


HITS = [(Chunk("a", "tools/server/README.md", "Usage > -np, --parallel", "`-np N`: number of server slots."), 0.9),
        (Chunk("b", "docs/build.md", "", "cmake -B build"), 0.4)]


# ---------------------------------------------------------------- message handling, no server

def test_clean_question_strips_control_characters_and_keeps_newlines():
    assert app.clean_question("  what\x00 is\x07 -np?\n  ") == ("what is -np?", [])
    assert app.clean_question("line one\nline two")[0] == "line one\nline two"


def test_empty_or_non_text_content_gives_an_empty_question():
    for content in ("", "   \n\t", None, b"bytes", 42):
        assert app.clean_question(content) == ("", [])


def test_huge_question_is_cut_and_says_so():
    question, notes = app.clean_question("slots" * 6000)
    assert len(question) <= app.MAX_QUESTION_CHARS
    assert len(notes) == 1 and "30,000" in notes[0] and f"{app.MAX_QUESTION_CHARS:,}" in notes[0]


def test_attachments_are_named_and_ignored():
    assert app.attachment_note([]) == "" and app.attachment_note(None) == ""
    note = app.attachment_note([SimpleNamespace(name="photo.png"), SimpleNamespace(name=None)])
    assert "photo.png" in note and "a file" in note and "not read" in note


def test_attachments_are_noted_by_clean_question():
    question, notes = app.clean_question("What is -np?", [SimpleNamespace(name="photo.png")])
    assert question == "What is -np?" and len(notes) == 1 and "photo.png" in notes[0]


LINES = ["[1] tools/server/README.md › Usage > -np, --parallel", "[2] docs/build.md › "]


def test_footer_lists_cited_sources_first_then_the_model_time_and_how_cited():
    text = app.footer(LINES, {"citations": [2], "refused": False, "structured": True}, "qwen2.5-coder-0.5b", 1.234)
    cited, rest = text.split("**Also retrieved (not cited)**")
    assert "**Sources cited**\n- [2] docs/build.md" in cited and "[1] tools/server" in rest
    assert text.rstrip().endswith("*qwen2.5-coder-0.5b · 1.2 s · cited by constrained JSON*")
    plain = app.footer(LINES, {"citations": [], "refused": False, "structured": False}, "m", 2.0)
    assert "Sources cited" not in plain and "cited on a Sources line" in plain  # no citation: none claimed


def test_refusals_say_not_in_the_docs_why_and_the_closest_score():
    said = app.not_found(HITS, "no passage is close enough to the question")
    assert said.startswith(app.NOT_IN_DOCS) and "I could not find this" in said and "scored 0.90" in said
    # the model already wrote the sentence (plain-text replies): only the badge and the reason follow it
    after = app.not_found(HITS, "the model found no answer", said="I could not find this in the llama.cpp docs.")
    assert after.startswith("\n\n" + app.NOT_IN_DOCS) and "I could not find this" not in after
    gate = app.footer(LINES, {"refused": True}, None, 0.2)
    assert "**Passages searched**" in gate and "no model asked · 0.2 s · refused by the similarity threshold" in gate


def test_a_withheld_answer_is_replaced_by_a_refusal_naming_the_unsupported_terms():
    result = {"refused": True, "citations": [], "unsupported": ["--slot-mail-to"], "structured": True}
    text = app.refusal(["Attachments are not read (a.png)."], HITS, result)
    assert text.startswith("*Attachments are not read (a.png).*\n\n" + app.NOT_IN_DOCS)
    assert "--slot-mail-to, which no passage contains" in text and "scored 0.90" in text
    assert "the model found no answer" in app.refusal([], HITS, {**result, "unsupported": []})
    assert app.footer(LINES, result, "m", 1.0).rstrip().endswith("*m · 1.0 s · withheld: unsupported terms*")
    assert app.footer(LINES, {**result, "unsupported": []}, "m", 1.0).rstrip().endswith("· refused by the model*")


def test_passage_names_its_file_and_heading():
    assert app.passage(HITS[0][0]).startswith("**tools/server/README.md › Usage > -np, --parallel**\n\n`-np N`")
    assert app.source_label(HITS[1][0]) == "docs/build.md"  # no heading: the path alone


def test_the_command_is_chainlit_run_on_the_learners_file_bound_to_loopback():
    command = app.command(8123)
    assert command[-7:] == ["run", str(app.SCRIPT), "--host", "127.0.0.1", "--port", "8123", "--headless"]
    assert app.SCRIPT.name == "rag_chat.py" and app.SCRIPT.is_file()


def test_a_missing_app_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(app, "_require_chainlit", lambda: None)
    with pytest.raises(WorkshopError, match="no app file"):
        app.start(SimpleNamespace(base_url="http://127.0.0.1:9/v1"), script=tmp_path / "nope.py")


def without_chainlit(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(app.importlib.util, "find_spec", lambda name, *a: None if name == "chainlit" else real(name, *a))


def test_a_python_the_pin_excludes_skips_the_app_with_one_sentence(monkeypatch, tmp_path, capsys):
    """Chainlit absent because its pin's marker is false here (a real marker, false on every Python): one
    sentence says what is skipped and what to do; start() and the command line say it too, start nothing."""
    req = tmp_path / "requirements-rag.txt"
    req.write_text('bm25s==0.3.16\nchainlit==2.12.0 ; python_version < "3"\n')
    without_chainlit(monkeypatch)
    said = app.skipped(req)
    assert said.startswith("Chainlit app skipped: ") and said.count(". ") == 0 and said.endswith(".")
    assert 'chainlit 2.12.0 only where python_version < "3"' in said and "Python 3.13 or older" in said
    assert "everything else in lesson 04 runs" in said
    monkeypatch.setattr(app, "REQUIREMENTS", req)
    before = process.running(app.NAME)
    with pytest.raises(app.ChainlitNotSupported) as err:
        app.start(SimpleNamespace(base_url="http://127.0.0.1:9/v1"))
    assert str(err.value) == said
    assert app.main(["start"]) == app.SKIPPED_EXIT and capsys.readouterr().out.strip() == said
    assert process.running(app.NAME) == before


def test_chainlit_merely_not_installed_yet_says_to_install_it(monkeypatch, tmp_path):
    req = tmp_path / "requirements-rag.txt"
    req.write_text('chainlit==2.12.0 ; python_version >= "3"\n')  # it would install here: no skip
    without_chainlit(monkeypatch)
    assert app.skipped(req) is None
    monkeypatch.setattr(app, "REQUIREMENTS", req)
    with pytest.raises(WorkshopError, match="not installed") as err:
        app.start(SimpleNamespace(base_url="http://127.0.0.1:9/v1"))
    assert not isinstance(err.value, app.ChainlitNotSupported)


def test_with_chainlit_installed_nothing_is_skipped(monkeypatch):
    monkeypatch.setattr(app.importlib.util, "find_spec", lambda name, *a: SimpleNamespace(name=name))
    assert app.skipped() is None


def test_down_message_says_what_happened_and_what_to_do():
    text = app.down_message(EndpointError("The model endpoint http://x is not answering.", "Run serve."))
    assert "not answering" in text and "Run serve." in text and "send your question again" in text
    assert "boom" in app.down_message(ConnectionError("boom"))


def test_default_model_prefers_the_notebooks_slm(monkeypatch):
    monkeypatch.delenv("WORKSHOP_CHAINLIT_MODEL", raising=False)
    lab = SimpleNamespace(models={"slm": "small", "llm": "large"}, available=["large", "small"])
    assert app.default_model(lab) == "small"
    assert app.default_model(SimpleNamespace(models={"slm": None}, available=["only"])) == "only"
    monkeypatch.setenv("WORKSHOP_CHAINLIT_MODEL", "large")
    assert app.default_model(lab) == "large"


def test_stream_tokens_yields_text_deltas_only():
    import asyncio

    def delta(text):
        return SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=text))])
    stream = [delta("Use "), delta(None), SimpleNamespace(choices=[]), delta("-np [1]")]

    async def collect():
        return [t async for t in app.stream_tokens(stream)]
    assert asyncio.run(collect()) == ["Use ", "-np [1]"]


# ---------------------------------------------------------------- launcher errors, nothing started

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_taken_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(PortInUseError) as err:
            app._free_port(s.getsockname()[1])
    assert "WORKSHOP_CHAINLIT_PORT" in err.value.fix


@needs_chainlit
def test_a_down_endpoint_is_a_clear_error_before_anything_starts():
    before = process.running(app.NAME)
    down = SimpleNamespace(base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key=None, models={}, available=[])
    with pytest.raises(EndpointError):
        app.start(down)
    assert process.running(app.NAME) == before  # a running app was left alone


# ---------------------------------------------------------------- the app in a real browser

def rag_item() -> dict:
    """The first answerable question of lesson 04's set whose retrieved passages hold a supporting one:
    this tests that the app shows and links a supporting citation, not how well retrieval ranks."""
    from workshop_lib import rag
    from workshop_lib.rag import evaluate
    for item in (i for i in evaluate.load_questions() if i["answerable"]):
        if any(evaluate.supports(chunk, item) for chunk, _ in rag.retrieve(item["question"], k=5)):
            return item
    pytest.fail("no answerable question retrieves a supporting passage")


# In the llama.cpp domain, and not answered by its docs (checked by reading them: no e-mail, no tray icon).
UNANSWERABLE = "Which llama-server option makes it send me an e-mail when a slot finishes a request?"
DONE = " s · "  # the footer's last line, "<model> · 3.2 s · <how cited>": the answer has finished
REFERENCE_APP = DATA_DIR.parent / "notebooks" / "solutions" / "04-app-scores" / "rag_chat.py"


def cited_numbers(text: str) -> list:
    """The source numbers listed under "Sources cited" in an answer's text."""
    section = text.split("Sources cited", 1)[1].split("Also retrieved", 1)[0] if "Sources cited" in text else ""
    return [int(n) for n in re.findall(r"^\W*\[(\d+)\]", section, re.M)]


@pytest.fixture(scope="module")
def rag():
    from workshop_lib import rag
    return rag


@pytest.fixture(scope="module")
def lab():
    return connect_or_skip()


@pytest.fixture(scope="module")
def app_url(lab, rag):
    if importlib.util.find_spec("chainlit") is None:
        pytest.skip(NO_CHAINLIT)
    rag.retrieve("llama-server", k=1)  # build or load the index here, not inside the browser's wait
    app.stop()
    started = time.perf_counter()
    url = app.start(lab)
    print(f"\nChainlit app ready at {url} after {time.perf_counter() - started:.1f} s")
    yield url
    record = process.running(app.NAME)
    family = [record.pid] + [p.pid for p in psutil.Process(record.pid).children(recursive=True)] if record else []
    assert app.stop() == bool(record)
    assert not [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def open_chat(page, url):
    page.goto(url)
    page.wait_for_selector("#chat-settings-open-modal", timeout=120_000)  # on_chat_start has run


def ask(page, text, done, timeout_s: float = 900):  # minutes: a loaded 2-core machine decodes slowly
    """Send ``text`` and wait until a new assistant message contains ``done`` (a string, or a list of
    which any will do); return that message."""
    before = page.locator(ANSWER).count()
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    page.wait_for_function("([sel, n, done]) => { const s = document.querySelectorAll(sel);"
                           " return s.length > n && done.some(d => s[s.length - 1].innerText.includes(d)); }",
                           arg=[ANSWER, before, [done] if isinstance(done, str) else list(done)],
                           timeout=timeout_s * 1000)
    return page.locator(ANSWER).last


@pytest.mark.server  # the real endpoint (lab), the app, and chromium
@pytest.mark.browser
def test_browser_answer_streams_with_a_supporting_clickable_citation(app_url, lab, rag):
    from workshop_lib.rag import evaluate
    item = rag_item()
    with chromium_page() as page:
        open_chat(page, app_url)
        started = time.perf_counter()
        answer = ask(page, item["question"], done=DONE, timeout_s=900)
        latency = time.perf_counter() - started
        text = answer.inner_text()
        print(f"\nQ: {item['question']}\nanswer after {latency:.1f} s:\n{text}")
        assert "Not in the docs" not in text and text.split("Sources cited")[0].strip(), "no answer streamed"
        assert "{" not in text.split("Sources cited")[0]  # the answer's text, never the raw JSON
        assert re.search(rf"{re.escape(lab.slm)} · \d+\.\d s · cited", text)  # which model, how long
        hits = rag.retrieve(item["question"], k=5)
        cited = cited_numbers(text)
        assert cited, "the answer lists no cited source"
        assert any(evaluate.supports(hits[n - 1][0], item) for n in cited), (cited, item["support"])
        first = answer.locator("li a.element-link").first
        assert first.inner_text() == f"[{cited[0]}]"
        first.click()  # opens the cited passage beside the chat: its file and heading first
        panel = page.locator("#side-view-content:visible")
        panel.first.wait_for(timeout=10_000)
        assert app.source_label(hits[cited[0] - 1][0]) in panel.first.inner_text()
        save_screenshot(page, "chainlit_rag_answer")


@pytest.mark.server  # the real endpoint (lab), the app, and chromium
@pytest.mark.browser
@pytest.mark.xfail(strict=False, reason="measured 2026-12-02 03:19 UTC with qwen2.5-coder-0.5b: the passages score "
                   "0.63 to 0.65 (above the 0.535 cut), the structured verdict says answerable, and the answer "
                   "misuses --sleep-idle-seconds, a real flag that source [5] contains, so the app's unsupported-terms "
                   "stage (which caught an invented flag here before) cannot refuse it; a verdict model that reads "
                   "the sources better is what would")
def test_browser_in_domain_question_the_docs_do_not_answer_is_refused(app_url):
    with chromium_page() as page:
        open_chat(page, app_url)
        answer = ask(page, UNANSWERABLE, done=DONE, timeout_s=900)
        text = answer.inner_text()
        print(f"\nQ: {UNANSWERABLE}\n{text}")
        assert "Not in the docs." in text and "Passages searched" in text and "Sources cited" not in text
        save_screenshot(page, "chainlit_rag_refusal")


def refused_in_the_full_run(model: str):
    """An in-domain unanswerable question that the course's full run says the app refuses with ``model``
    after asking it (above the cosine cut), so its refusal is the model's or the terms stage's."""
    from workshop_lib.rag import evaluate
    from workshop_lib.rag.answer import THRESHOLD
    questions = {i["id"]: i for name in (evaluate.QUESTIONS, evaluate.HELDOUT) for i in evaluate.load_questions(name)}
    for row in evaluate.load_rows(evaluate.SHIPPED_RUN):
        if row["model"] == model and "in-domain" in row["kind"] and row["best"] >= THRESHOLD and row["app"]["refused"]:
            return questions[row["id"]]["question"]
    pytest.fail(f"the shipped full run has no in-domain question that the app refused with {model}")


@pytest.mark.server  # the real endpoint (lab), the app, and chromium
@pytest.mark.browser
def test_browser_an_in_domain_question_the_app_refuses_shows_not_in_the_docs(app_url, lab):
    """The "not in the docs" state for a question about llama.cpp that its docs do not answer, picked from
    the full run's rows (how often the app refuses such questions is the full run's figure, in lesson 04)."""
    question = refused_in_the_full_run(lab.slm)
    with chromium_page() as page:
        open_chat(page, app_url)
        text = ask(page, question, done=DONE, timeout_s=900).inner_text()
        print(f"\nQ: {question}\n{text}")
        assert "Not in the docs." in text and "Passages searched" in text and "Sources cited" not in text
        save_screenshot(page, "chainlit_rag_in_domain_refusal")


@pytest.mark.server  # the real endpoint (lab), the app, and chromium
@pytest.mark.browser
def test_browser_reference_exercise_change_shows_each_sources_score(app_url, lab):
    """04-app-scores: the reference solution's app file, started as a learner would restart theirs."""
    url = app.start(lab, script=REFERENCE_APP)
    try:
        with chromium_page() as page:
            open_chat(page, url)
            text = ask(page, rag_item()["question"], done=DONE, timeout_s=900).inner_text()
            print(f"\n{text}")
            scores = re.findall(r"^\W*\[\d\] .+ \(similarity (0\.\d\d)\)$", text, re.M)
            assert len(scores) == 5, text
            save_screenshot(page, "chainlit_exercise_scores")
    finally:  # back to the lesson's app, on its port, for the tests after this one
        assert app.start(lab, port=urllib.parse.urlparse(app_url).port) == app_url


@pytest.mark.server  # the real endpoint (lab), the app, and chromium
@pytest.mark.browser
def test_browser_model_picker_lists_the_served_models(app_url, lab):
    with chromium_page() as page:
        open_chat(page, app_url)
        page.click("#chat-settings-open-modal")
        page.click("#model")
        options = page.locator("[role=option]")
        options.first.wait_for(timeout=10_000)
        assert sorted(options.all_inner_texts()) == sorted(lab.available)
        save_screenshot(page, "chainlit_model_picker")


@pytest.mark.server  # the real endpoint (lab), the app, and chromium
@pytest.mark.browser
def test_browser_empty_huge_and_file_input_do_not_crash(app_url, rag, tmp_path):
    with chromium_page() as page:
        open_chat(page, app_url)
        page.fill("#chat-input", "   ")
        page.press("#chat-input", "Enter")  # blank: the UI does not send it; nothing may break
        attachment = tmp_path / "notes.bin"
        attachment.write_bytes(bytes(range(256)))
        page.locator("input[type=file]").first.set_input_files(str(attachment))
        page.wait_for_selector("text=notes.bin", timeout=10_000)
        reply = ask(page, "", done="Type a question", timeout_s=30)  # a file and no text
        assert "not read (notes.bin)" in reply.inner_text()
        huge = "How do I set the number of parallel slots in llama-server? " + "x" * 20_000
        finished = [DONE]  # answered, or refused as not in the documents: the footer closes both
        ask(page, huge, done=f"only the first {app.MAX_QUESTION_CHARS:,}", timeout_s=120)
        page.wait_for_function("([sel, done]) => { const s = document.querySelectorAll(sel);"
                               " return done.some(d => s[s.length - 1].innerText.includes(d)); }",
                               arg=[ANSWER, finished], timeout=900_000)
        ask(page, "What does the -c option of llama-server set?", done=finished)  # still answers afterwards
        save_screenshot(page, "chainlit_bad_input")


@pytest.mark.server  # the real endpoint (lab), the app, and chromium
@pytest.mark.browser
def test_browser_endpoint_down_is_said_not_crashed(app_url):
    """Last: restarts the app on a closed port (the module fixture stops it afterwards)."""
    down = SimpleNamespace(base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key=None, models={}, available=[])
    url = app.start(down, check_endpoint=False)
    with chromium_page() as page:
        page.goto(url)
        page.wait_for_selector(f"{ANSWER} >> text=not answering", timeout=60_000)
        reply = ask(page, FALLBACK_QUESTION, done="not answering", timeout_s=60)
        assert down.base_url in reply.inner_text()
        save_screenshot(page, "chainlit_endpoint_down")
