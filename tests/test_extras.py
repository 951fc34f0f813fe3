import importlib.metadata

import pytest

from workshop_lib import extras
from workshop_lib.errors import DataFileError


def test_missing_pins_reads_only_exact_pins(tmp_path):
    pytest_version = importlib.metadata.version("pytest")
    req = tmp_path / "requirements-demo.txt"
    req.write_text(f"# comment\npytest=={pytest_version}\nno-such-package-xyz==1.0 --hash=sha256:00\n"
                   "pandas>=1\n-r other.txt\n")
    assert extras.missing_pins(req) == ["no-such-package-xyz==1.0"]


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
