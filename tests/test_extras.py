import importlib.metadata

import pytest

from workshop_lib import extras
from workshop_lib.errors import DataFileError, WorkshopError


def test_missing_pins_reads_only_exact_pins(tmp_path):
    pytest_version = importlib.metadata.version("pytest")
    req = tmp_path / "requirements-demo.txt"
    req.write_text(f"# comment\npytest=={pytest_version}\nno-such-package-xyz==1.0 --hash=sha256:00\n"
                   "pandas>=1\n-r other.txt\n")
    assert extras.missing_pins(req) == ["no-such-package-xyz==1.0"]


def test_a_pin_whose_marker_is_false_here_is_not_missing(tmp_path):
    """pip skips a pin whose environment marker is false (chainlit on Python 3.14): require() must not
    count it as missing, or it would reinstall the extra every time; a true marker still counts."""
    req = tmp_path / "requirements-demo.txt"
    req.write_text('no-such-package-old==1.0 ; python_version < "3"\n'
                   'no-such-package-new==2.0 ; python_version >= "3"  # a comment\n'
                   'no-such-package-hashed==3.0 ; sys_platform == "no-such-os" \\\n    --hash=sha256:00\n')
    assert extras.missing_pins(req) == ["no-such-package-new==2.0"]
    assert [name for name, _, _ in extras.skipped_pins(req)] == ["no-such-package-old", "no-such-package-hashed"]
    assert extras.pins(req)[0] == ("no-such-package-old", "1.0", 'python_version < "3"')


def test_the_rag_extra_pins_chainlit_only_where_it_installs():
    pins = {name: marker for name, _, marker in extras.pins(extras.requirement_file("rag"))}
    assert pins["chainlit"] == 'python_version < "3.14"' and pins["bm25s"] is None


def test_local_version_label_satisfies_the_pin():
    assert extras.same_version("2.13.0+cpu", "2.13.0")
    assert not extras.same_version("2.13.1", "2.13.0") and not extras.same_version(None, "1.0")


def test_unknown_extra_lists_the_real_ones(tmp_path):
    (tmp_path / "requirements-rag.txt").write_text("")
    with pytest.raises(DataFileError, match="Use one of: rag"):
        extras.requirement_file("nope", tmp_path)


def test_pip_options_come_from_the_first_line(tmp_path):
    req = tmp_path / "requirements-x.txt"
    req.write_text("# pip-options: --no-deps\nfoo==1\n")
    assert extras.pip_options(req) == ["--no-deps"]
    req.write_text("foo==1\n")
    assert extras.pip_options(req) == []


def test_satisfied_extra_installs_nothing(tmp_path, monkeypatch):
    (tmp_path / "requirements-ok.txt").write_text(f"pytest=={importlib.metadata.version('pytest')}\n")
    monkeypatch.setattr(extras, "run_pip", lambda *a: pytest.fail("nothing to install"))
    extras.require("ok", tmp_path)


PIP_ON_PYTHON_313 = """\
ERROR: Ignored the following versions that require a different python version: 0.1.124 Requires-Python <3.12.0a1,>=3.11; 0.12.4 Requires-Python <3.13.0a1,>=3.11
ERROR: Could not find a version that satisfies the requirement open-webui==0.12.4 (from versions: none)
ERROR: No matching distribution found for open-webui==0.12.4
"""
PIP_OFFLINE = """\
WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/foo/
ERROR: Could not find a version that satisfies the requirement foo==1.0 (from versions: none)
ERROR: No matching distribution found for foo==1.0
"""


def test_pip_failure_on_a_too_new_python_names_the_python_not_the_network():
    cause, fix = extras.pip_failure_cause(PIP_ON_PYTHON_313, "3.13.0")
    assert "open-webui==0.12.4 has no release for Python 3.13.0" in cause
    assert "PyPI" not in cause + fix and "network" not in cause + fix and "Requires-Python" in fix


def test_pip_failure_offline_names_the_network():
    cause, fix = extras.pip_failure_cause(PIP_OFFLINE, "3.11.7")
    assert "could not reach the package index" in cause and "proxy" in fix


def test_pip_failure_of_unknown_cause_only_guesses_the_network():
    cause, fix = extras.pip_failure_cause("ERROR: something else\n", "3.11.7")
    assert cause == "" and "if it shows no cause, check that pip reaches PyPI" in fix


def test_run_pip_error_carries_the_cause(tmp_path, monkeypatch):
    """The whole path: pip's real exit and output, read back from its log into the error."""
    fake_pip = tmp_path / "fakepython"
    fake_pip.write_text("#!/bin/sh\ncat <<'EOF'\n" + PIP_ON_PYTHON_313 + "EOF\nexit 1\n")
    fake_pip.chmod(0o755)
    monkeypatch.setattr(extras, "python_version", lambda python=None: "3.13.0")
    with pytest.raises(WorkshopError, match="has no release for Python 3.13.0") as caught:
        extras.run_pip(["install", "open-webui==0.12.4"], tmp_path / "pip.log", python=fake_pip, progress=False)
    assert "check that pip reaches PyPI" not in str(caught.value)
