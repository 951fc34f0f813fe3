import subprocess
import sys

import pytest

from workshop_lib import config
from workshop_lib.errors import WorkshopError

WRITER = """
import sys
from pathlib import Path
from workshop_lib.config import write_atomic
for _ in range(40):
    write_atomic(Path(sys.argv[1]), sys.argv[2] * 20000)
"""


def test_concurrent_writers_never_mix_or_leave_temp_files(tmp_path):
    target = tmp_path / "results.json"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), letter]) for letter in "abc"]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    text = target.read_text()
    assert text in ("a" * 20000, "b" * 20000, "c" * 20000)  # one writer's file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "x.txt"
    config.write_atomic(target, "old")
    with pytest.raises(UnicodeEncodeError):
        config.write_atomic(target, "bad \udc80 text")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_numeric_settings(monkeypatch):
    monkeypatch.setenv("WORKSHOP_TIMEOUT", "12.5")
    assert config.float_setting("timeout", 300) == 12.5
    monkeypatch.delenv("WORKSHOP_TIMEOUT")
    assert config.float_setting("timeout", 300) == 300 and config.int_setting("port") is None


@pytest.mark.parametrize("name, value, reader", [("timeout", "5min", config.float_setting),
                                                 ("port", "http", config.int_setting),
                                                 ("threads", "-2", config.int_setting)])
def test_a_malformed_number_names_the_setting_and_the_fix(monkeypatch, name, value, reader):
    monkeypatch.setenv(f"WORKSHOP_{name.upper()}", value)
    with pytest.raises(WorkshopError, match=f"WORKSHOP_{name.upper()} is '{value}'") as err:
        reader(name, 4)
    assert "remove it to use the default" in err.value.fix
