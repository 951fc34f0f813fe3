"""lab.py, the README's commands: what it refuses, what it repairs, how it stops, what CI adds.
Run as the learner runs it (a subprocess) or through its functions on a throwaway venv."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import needs_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab():
    spec = importlib.util.spec_from_file_location("lab_under_test", ROOT / "lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv", [["start", "--no-embeded"], ["setup", "-k", "x"], ["stop", "--verbose"]])
def test_unknown_option_is_refused_with_the_usage_line(argv):
    out = subprocess.run([sys.executable, str(ROOT / "lab.py"), *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert out.stderr.startswith("usage: lab.py") and argv[1] in out.stderr
    assert "[lab" not in out.stdout  # refused before any step ran


def test_only_test_passes_arguments_on_to_pytest(lab):
    args, rest = lab.parse(["test", "-k", "doctor", "--no-embedded"])
    assert args.command == "test" and args.no_embedded and rest == ["-k", "doctor"]


def test_venv_without_pip_is_made_anew(lab, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert not lab.has_pip(venv)
    lab.ensure_venv(venv)
    assert lab.has_pip(venv)


def test_python_that_makes_venvs_without_pip_says_what_to_install(lab, tmp_path, monkeypatch):
    """Debian without python3-venv: `python -m venv` leaves a venv with no pip behind."""
    def debian_venv(*cmd, check=True, **kwargs):
        return subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(cmd[-1])]).returncode
    monkeypatch.setattr(lab, "run", debian_venv)
    venv = tmp_path / "venv"
    with pytest.raises(SystemExit, match="apt-get install python3-venv"):
        lab.ensure_venv(venv)
    assert not venv.exists(), "half a venv left behind: the next run would take it for a good one"


def test_failed_pip_install_leaves_no_stamp(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "ROOT", tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "requirements-x.txt").write_text("x==1\n")
    stamp = tmp_path / ".installed-requirements-x.txt"
    stamp.write_text("an older file's digest")
    monkeypatch.setattr(lab, "run", lambda *a, **k: sys.exit("pip failed"))
    with pytest.raises(SystemExit):
        lab.pip_install("requirements-x.txt", venv=tmp_path)
    assert not stamp.exists()


def test_missing_bubblewrap_is_one_line_without_root(lab, monkeypatch, capsys):
    monkeypatch.setattr(lab.shutil, "which", lambda name, *a, **k: None if name == "bwrap" else f"/usr/bin/{name}")
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000, raising=False)
    lab.ensure_system_packages()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "no bubblewrap found: the code sandbox runs without it" in lines[0]
    assert "apt-get install bubblewrap" in lines[0]


def test_ci_light_leg_counts_in_the_exit_code(lab, monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(lab, "setup", lambda *a: None)
    monkeypatch.setattr(lab, "serve_while", lambda *a, **k: 0)
    monkeypatch.setattr(lab, "second_server_pass", lambda env: 0)
    monkeypatch.setattr(lab, "light_leg", lambda: 1)
    assert lab.main(["test"]) == 1
    monkeypatch.delenv("CI")
    assert lab.main(["test"]) == 0


def test_first_pass_runs_the_solutions_and_second_pass_runs_notebooks_unanswered(lab, monkeypatch):
    seen = {}
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(lab, "setup", lambda *a: None)
    monkeypatch.setattr(lab, "serve_while", lambda *a, env=None: seen.setdefault("first", env) and 0)
    monkeypatch.setattr(lab, "second_server_pass", lambda env: seen.setdefault("second", env) and 0)
    assert lab.main(["test"]) == 0
    assert seen["first"]["WORKSHOP_SOLUTIONS"] == "1" and seen["first"]["WORKSHOP_EXPECT"] == "solved"
    assert "WORKSHOP_SOLUTIONS" not in seen["second"] and seen["second"]["WORKSHOP_EXPECT"] == "unanswered"


def test_light_leg_picks_another_python_and_only_unit_tests(lab, monkeypatch, tmp_path):
    calls = []
    other = (3, 12) if sys.version_info[:2] != (3, 12) else (3, 11)
    fake = SimpleNamespace(find=lambda versions: calls.append(list(versions)) or Path(sys.executable),
                           version_of=lambda cmd: (Path(cmd[0]), other))
    monkeypatch.setattr(lab, "load_pythons", lambda: fake)
    monkeypatch.setattr(lab, "ROOT", tmp_path)
    monkeypatch.setattr(lab, "ensure_venv", lambda venv, python: calls.append(venv))
    monkeypatch.setattr(lab, "pip_install", lambda name, venv: calls.append(name))
    monkeypatch.setattr(lab, "run", lambda *cmd, check=True, **k: calls.append(cmd) or 0)
    assert lab.light_leg() == 0
    assert sys.version_info[:2] not in calls[0] and calls[0] == sorted(calls[0], reverse=True)
    assert calls[1] == tmp_path / f".venv-py{other[0]}.{other[1]}" and calls[2] == "requirements.txt"
    assert calls[3][-2:] == ("-m", "not server and not browser and not install")


def test_light_leg_without_another_python_says_so(lab, monkeypatch, capsys):
    monkeypatch.setattr(lab, "load_pythons", lambda: SimpleNamespace(find=lambda versions: None))
    assert lab.light_leg() == 0
    assert "light leg: no other Python" in capsys.readouterr().out


def test_pythons_finds_this_interpreter_by_its_version(lab):
    found = lab.load_pythons().find([sys.version_info[:2]])
    assert found is not None
    out = subprocess.run([str(found), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert out.stdout.strip() == str(sys.version_info[:2])


def test_pythons_ignores_a_command_that_does_not_start(lab, tmp_path):
    assert lab.load_pythons().version_of([str(tmp_path / "python9.9")]) is None


@pytest.mark.server
@needs_server
def test_registered_kernel_connects_and_chats(lab, tmp_path, monkeypatch):
    """What VS Code does: run a notebook on the kernel named "Local LLM Lab" (registered by setup)."""
    import nbformat
    from nbclient import NotebookClient
    from jupyter_client.kernelspec import KernelSpecManager
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    monkeypatch.setattr(lab, "venv_python", lambda venv=None: Path(sys.executable))
    lab.register_kernel()
    spec = KernelSpecManager().get_kernel_spec(lab.KERNEL[0])
    assert spec.display_name == "Local LLM Lab"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import json, sys\nimport workshop_lib as wl\nlab = wl.connect(verbose=False)\n"
        "reply = lab.client.chat.completions.create(model=lab.slm, max_tokens=8, temperature=0,\n"
        "    messages=[{'role': 'user', 'content': 'Say OK.'}])\n"
        "print(json.dumps({'python': sys.executable, 'answer': reply.choices[0].message.content}))")])
    NotebookClient(nb, kernel_name=lab.KERNEL[0], timeout=600,
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    result = json.loads(nb.cells[0].outputs[-1]["text"].strip().splitlines()[-1])
    assert Path(result["python"]).resolve() == Path(sys.executable).resolve() and result["answer"].strip()


def test_after_stopping_the_server_it_started_ctrl_c_works_again(lab, monkeypatch):
    """serve_while ignores Ctrl+C while it stops the server; the second server's pass and the light
    leg run after it, and a child inherits an ignored SIGINT (their interrupt tests then fail)."""
    import signal
    monkeypatch.setattr(lab, "lib", lambda *args, **kwargs: 1 if args[:1] == ("status",) else 0)
    monkeypatch.setattr(lab, "run", lambda *args, **kwargs: 0)
    before = signal.getsignal(signal.SIGINT)
    try:
        assert lab.serve_while(True, "pytest") == 0
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
