import json
import stat
import sys

import pytest

from workshop_lib.runtime import checkup as doctor
from workshop_lib.runtime import endpoint, llamacpp, models

PYTHON = sys.executable  # before a test hides it

def test_doctor_reports_every_area(capsys):
    checks = doctor.doctor()
    areas = [c.name.split()[0] for c in checks]
    assert {"python", "package", "model", "llama-server", "foundry", "endpoint"} <= set(areas)
    assert areas.count("package") == len(doctor.PACKAGES) and areas.count("model") == len(models.load_registry())
    assert all(c.status in ("ok", "fail", "info") for c in checks) and all(c.fix for c in checks if c.status == "fail")
    printed = capsys.readouterr().out
    assert all(f"] {c.name}: {c.detail}" in printed for c in checks)  # each one is shown, not only counted
    failed = sum(c.status == "fail" for c in checks)
    assert (f"{failed} problem(s) found." if failed else "All checks passed.") in printed


def test_the_python_check_names_this_interpreter_and_refuses_an_old_one():
    ok = doctor.check_python()
    assert ok.status == "ok" and ok.detail == "{}.{}.{} at {}".format(*sys.version_info[:3], sys.executable)
    old = doctor.check_python((3, 10, 12))
    assert old.status == "fail" and "3.10.12 is too old" in old.detail and "Python 3.11 or newer" in old.fix


def test_a_missing_package_fails_with_a_fix(monkeypatch):
    monkeypatch.setattr(doctor, "PACKAGES", ("no-such-package-xyz",))
    [check] = doctor.check_packages()
    assert check.status == "fail" and "requirements.txt" in check.fix
    assert "1 problem(s) found." in doctor.report([check])


@pytest.fixture
def foundry_laptop(monkeypatch, tmp_path):
    """A machine with neither the weight packages nor a llama.cpp build nor a compiler."""
    registry = {"models": [{"alias": "tiny", "title": "Tiny", "family": "t", "parameters": "0", "quantization": "-",
                            "license": "MIT", "chat_template": True, "role": "slm", "context": 64,
                            "file": "tiny.gguf", "size": 1, "sha256": "0" * 64,
                            "parts": {"count": 1, "package": "no-such-part{n}==1.0", "module": "no_such_part{n}",
                                      "file": "data/part{n:02d}.bin"}}]}
    (tmp_path / "models.json").write_text(json.dumps(registry))
    monkeypatch.setattr(models, "REGISTRY_FILE", tmp_path / "models.json")
    monkeypatch.setattr(llamacpp, "is_built", lambda: False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no compiler, no cmake, no foundry CLI
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # nor a cmake in the venv
    monkeypatch.setenv("ProgramFiles(x86)", str(tmp_path / "no-visual-studio"))  # nor Visual Studio (Windows)
    for variable in endpoint.ENDPOINT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def embedded_only(checks):
    return [c for c in checks if c.name.startswith(("model ", "llama-server"))]


def test_what_the_embedded_backend_needs_fails_on_it(foundry_laptop):
    foundry_laptop.setattr(doctor, "check_endpoint", lambda: [])
    checks = embedded_only(doctor.doctor(verbose=False))
    assert [c.status for c in checks] == ["fail", "fail"]


def test_a_foundry_user_is_told_not_failed_about_weights_and_build(foundry_laptop, capsys):
    foundry_laptop.setattr(doctor, "check_endpoint", lambda: [])
    foundry_laptop.setenv("FOUNDRY_LOCAL_ENDPOINT", "http://127.0.0.1:5273")
    checks = embedded_only(doctor.doctor())
    assert [c.status for c in checks] == ["info", "info"]
    assert all("not needed: you use the foundry-service backend" in c.detail for c in checks)
    assert all(c.fix.startswith("only for the embedded server") for c in checks)
    assert "Backend: foundry-service" in capsys.readouterr().out


def test_endpoint_check_says_which_role_is_missing(monkeypatch):
    found = ("foundry-service", "http://127.0.0.1:9/v1", None)
    monkeypatch.setattr(endpoint, "find_endpoint", lambda start=True: found)
    monkeypatch.setattr(endpoint, "list_models", lambda *a, **k: ["qwen2.5-0.5b-instruct-generic-cpu:4"])
    ok, role = doctor.check_endpoint()
    assert ok.status == "ok" and "slm = qwen2.5-0.5b-instruct-generic-cpu:4" in ok.detail
    assert role.status == "info" and role.name == "model for llm" and "foundry model run" in role.fix


def test_windows_build_check_names_the_visual_studio_build_tools(foundry_laptop):
    check = doctor.check_llama_server(os_name="win32")  # the Windows decision, on this OS's PATH lookup
    assert check.status == "fail" and "vswhere" in check.detail
    assert "Visual Studio Build Tools" in check.fix and "Microsoft.VisualStudio.Workload.VCTools" in check.fix
    assert "vswhere" not in doctor.check_llama_server(os_name="linux").detail  # elsewhere: no Visual Studio talk


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in vswhere is a POSIX script")
def test_windows_build_check_finds_visual_studio_as_cmake_does(foundry_laptop, tmp_path):
    # A stand-in for the Visual Studio installer's vswhere.exe, printing what it prints.
    installer = tmp_path / "pf86" / "Microsoft Visual Studio" / "Installer"
    installer.mkdir(parents=True)
    vswhere = installer / "vswhere.exe"
    vswhere.write_text(f"#!{PYTHON}\n"
                       "import sys\nassert 'Microsoft.VisualStudio.Component.VC.Tools.x86.x64' in sys.argv\n"
                       "print(r'C:\\BuildTools')\n")
    vswhere.chmod(vswhere.stat().st_mode | stat.S_IEXEC)
    foundry_laptop.setattr(llamacpp.platform, "machine", lambda: "AMD64")
    foundry_laptop.setenv("ProgramFiles(x86)", str(tmp_path / "pf86"))
    assert llamacpp.visual_studio_cpp() == "C:\\BuildTools"
    (tmp_path / "empty").mkdir(exist_ok=True)
    cmake = tmp_path / "empty" / "cmake"  # cmake itself is there (pip's cmake package, or Kitware's)
    cmake.write_text("")
    cmake.chmod(cmake.stat().st_mode | stat.S_IEXEC)
    check = doctor.check_llama_server(os_name="win32")
    assert check.status == "info" and "not built yet" in check.detail, (check.detail, check.fix)
    assert doctor.check_llama_server(os_name="linux").status == "fail"  # no compiler on PATH, and no VS there
