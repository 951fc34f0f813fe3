"""Open WebUI launcher (workshop_lib/apps/webui.py): settings and errors without the app, then the real
app on the real endpoint, driven through its HTTP API and in Debian's chromium."""
import json
import os
import socket
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from browser import chromium_page, save_screenshot
from conftest import connect_or_skip
from workshop_lib.apps import webui
from workshop_lib.errors import EndpointError, PortInUseError


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_settings_keep_it_offline_local_and_small(private_cache):
    env = webui.settings("http://127.0.0.1:9/v1", "key-123", 8123)
    assert env["OPENAI_API_BASE_URL"] == "http://127.0.0.1:9/v1" and env["OPENAI_API_KEY"] == "key-123"
    assert env["OFFLINE_MODE"] == "True" and env["HF_HUB_OFFLINE"] == "1"
    assert env["ENABLE_VERSION_UPDATE_CHECK"] == "False" and env["ENABLE_OLLAMA_API"] == "False"
    assert env["RAG_EMBEDDING_ENGINE"] and env["BYPASS_EMBEDDING_AND_RETRIEVAL"] == "True"
    assert json.loads(env["DEFAULT_MODEL_METADATA"]) == {"capabilities": {"builtin_tools": False}}
    assert all(env[f"ENABLE_{t}_GENERATION"] == "False" for t in ("TITLE", "FOLLOW_UP", "TAGS"))
    assert env["WEBUI_AUTH"] == "True" and env["ENABLE_SIGNUP"] == "False"
    assert env["CORS_ALLOW_ORIGIN"] == "http://127.0.0.1:8123"
    assert env["DATA_DIR"].startswith(str(private_cache)) and env["ENABLE_PERSISTENT_CONFIG"] == "False"
    assert webui.settings("http://x/v1", None, 1)["OPENAI_API_KEY"]  # never empty: it would mean "no key"


def test_secret_key_is_generated_once_and_private(private_cache):
    key = webui.secret_key()
    assert len(key) >= 32 and webui.secret_key() == key
    if os.name != "nt":
        assert stat.S_IMODE((private_cache / "webui" / "secret_key").stat().st_mode) == 0o600


def test_endpoint_down_is_a_clear_error(private_cache):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(EndpointError, match="not answering"):
        webui.start(SimpleNamespace(base_url=dead, api_key=None), progress=False)
    assert webui.running() is None


def test_port_taken_is_a_clear_error(private_cache, monkeypatch):
    monkeypatch.setattr(webui.endpoint, "list_models", lambda *a, **k: ["m"])  # endpoint fine
    monkeypatch.setattr(webui, "is_installed", lambda: True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(PortInUseError, match=str(s.getsockname()[1])):
            webui.start(SimpleNamespace(base_url="http://127.0.0.1:9/v1", api_key=None), port=s.getsockname()[1])


def skip_without_a_supported_python():
    """A machine with only Python 3.13+: the real-app tests skip, as lesson 06 does, with its sentence."""
    try:
        webui.app_python()
    except webui.NoSupportedPython as exc:
        pytest.skip(exc.sentence())


@pytest.fixture
def no_supported_python(private_cache, monkeypatch):
    """This machine as one with only a Python that Open WebUI does not support, and no other."""
    monkeypatch.setattr(webui, "SUPPORTED_PYTHONS", ((3, 99),))
    monkeypatch.setattr(webui.pythons, "find", lambda versions: None)
    monkeypatch.delenv("WORKSHOP_WEBUI_PYTHON", raising=False)


def test_no_supported_python_skips_install_with_one_sentence(no_supported_python, private_cache, capsys):
    assert webui.main(["install"]) == webui.NO_PYTHON_EXIT
    out = capsys.readouterr()
    assert len(out.out.strip().splitlines()) == 1 and not out.err
    assert out.out.startswith("Open WebUI skipped: Open WebUI 0.12.4 needs Python 3.11 or 3.12")
    assert "install Python 3.12" in out.out and "reaches PyPI" not in out.out
    assert not (private_cache / "webui" / "venv").exists(), "a venv on an unsupported Python was left behind"


def test_webui_tests_skip_with_that_sentence(no_supported_python):
    with pytest.raises(pytest.skip.Exception, match="Open WebUI skipped: .* install Python 3.12"):
        skip_without_a_supported_python()


def test_a_supported_python_found_elsewhere_is_used(private_cache, monkeypatch, tmp_path):
    monkeypatch.setattr(webui, "SUPPORTED_PYTHONS", ((3, 99),))
    monkeypatch.delenv("WORKSHOP_WEBUI_PYTHON", raising=False)
    monkeypatch.setattr(webui.pythons, "find", lambda versions: tmp_path / "python3.99")
    assert webui.app_python() == tmp_path / "python3.99"


def test_webui_python_setting_is_checked(private_cache, monkeypatch):
    monkeypatch.setenv("WORKSHOP_WEBUI_PYTHON", sys.executable)
    monkeypatch.setattr(webui, "SUPPORTED_PYTHONS", (sys.version_info[:2],))
    assert webui.app_python().resolve() == Path(sys.executable).resolve()
    monkeypatch.setattr(webui, "SUPPORTED_PYTHONS", ((3, 99),))
    with pytest.raises(webui.NoSupportedPython, match=f"WORKSHOP_WEBUI_PYTHON=.* is Python {sys.version_info[0]}"):
        webui.app_python()


def test_app_venv_without_pip_is_made_anew(private_cache):
    """A venv left by an interrupted install, or by an earlier run on another Python: pip could not use it."""
    import subprocess
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(private_cache / "webui" / "venv")], check=True)
    webui._make_venv(Path(sys.executable))
    assert subprocess.run([str(webui._venv_python()), "-c", "import pip"]).returncode == 0


# The real thing: installed (once, about 2 to 4 minutes) and started on the workshop's endpoint.

@pytest.fixture(scope="module")
def lab():
    return connect_or_skip()


@pytest.fixture(scope="module")
def ui(lab):
    skip_without_a_supported_python()
    if not webui.is_installed():  # the tests' cache links the learner's installed venv, if there is one
        pytest.skip("Open WebUI is not installed (2.9 GB, about 4 minutes): python -m workshop_lib webui install")
    started = webui.start(lab, progress=False)
    yield started
    webui.stop()


@pytest.mark.server
@pytest.mark.install
def test_api_lists_the_endpoint_models_and_answers(ui, lab):
    from openai import OpenAI
    client = OpenAI(base_url=f"{ui.url}/api", api_key=webui.sign_in(ui.url), max_retries=0)
    assert lab.slm in [m.id for m in client.models.list().data]
    reply = client.chat.completions.create(model=lab.slm, max_tokens=8, temperature=0,
                                           messages=[{"role": "user", "content": "Say OK."}])
    assert reply.choices[0].message.content.strip()
    if os.name != "nt":
        assert stat.S_IMODE(ui.credentials.stat().st_mode) == 0o600


@pytest.mark.server
@pytest.mark.install
@pytest.mark.browser
def test_browser_sign_in_pick_model_and_chat(ui, lab):
    with chromium_page() as page:
        page.goto(ui.url)
        page.fill("#email", ui.email)
        page.fill("#password", ui.password())
        page.get_by_role("button", name="Sign in").click()
        okay = page.get_by_role("button", name="Okay, Let's Go!")
        try:  # the release-notes popup of a first sign-in
            okay.click(timeout=10_000)
        except Exception:
            pass
        page.click("#model-selector-model-button")
        page.get_by_label(f"Select {lab.slm} model", exact=True).click()
        assert page.get_by_label(f"Selected model: {lab.slm}").count() == 1
        page.click("#chat-input")
        page.keyboard.type("Name one primary colour. One word.")
        page.keyboard.press("Enter")
        answer = page.locator("#response-content-container").last
        answer.wait_for(timeout=120_000)
        page.wait_for_function(
            "() => { const a = [...document.querySelectorAll('#response-content-container')].pop();"
            " return a && a.innerText.trim().length > 0; }", timeout=120_000)
        page.wait_for_timeout(3000)  # let the stream finish before the screenshot
        text = answer.inner_text().strip()
        save_screenshot(page, "open_webui_chat")
    assert text, "Open WebUI showed an empty answer"


@pytest.mark.server
@pytest.mark.install
def test_lost_password_is_a_clear_error_not_a_second_admin(ui):
    saved = ui.credentials.read_text()
    ui.credentials.unlink()
    try:
        with pytest.raises(webui.WorkshopError, match="webui reset"):
            webui.ensure_admin(ui.url)
    finally:
        webui._write_private(ui.credentials, saved)
    assert webui.sign_in(ui.url)


def test_cli_status_says_not_running(private_cache, capsys):
    assert webui.main(["status"]) == 3 and "not running" in capsys.readouterr().out


@pytest.mark.server
@pytest.mark.install
def test_stop_leaves_no_process_behind(ui):
    family = [psutil.Process(ui.pid)] + psutil.Process(ui.pid).children(recursive=True)
    assert webui.stop() is True
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, f"still running after stop: {alive}"
    assert webui.running() is None and webui.stop() is False
