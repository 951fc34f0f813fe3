from workshop_lib.runtime import checkup as doctor


def test_doctor_reports_every_area():
    checks = doctor.doctor(verbose=False)
    names = {c.name.split()[0] for c in checks}
    assert {"python", "package", "model", "llama-server", "foundry", "endpoint"} <= names
    assert checks[0].status == "ok"


def test_a_missing_package_fails_with_a_fix(monkeypatch):
    monkeypatch.setattr(doctor, "PACKAGES", ("no-such-package-xyz",))
    [check] = doctor.check_packages()
    assert check.status == "fail" and "requirements.txt" in check.fix
    assert "1 problem(s) found." in doctor.report([check])
