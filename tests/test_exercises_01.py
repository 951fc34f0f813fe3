"""Lesson 01's judge reads the expected bits per weight from the files and rejects the usual slips
(no server; a tiny GGUF written here stands in for the model files)."""
from pathlib import Path

import pytest

from conftest import needs_extra
from workshop_lib.exercises import lesson01

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
pytestmark = needs_extra("convert", "gguf", "numpy")


@pytest.fixture
def tiny_gguf(tmp_path) -> tuple:
    """A GGUF with 3,000 float32 weights in two tensors; returns (path, weights it stores)."""
    import gguf
    import numpy as np
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.ones((20, 100), dtype=np.float32))
    writer.add_tensor("output.weight", np.ones((10, 100), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, 3000


def test_expected_bits_come_from_the_file(tiny_gguf):
    path, stored = tiny_gguf
    assert lesson01.file_bits_per_weight(path) == pytest.approx(path.stat().st_size * 8 / stored)
    assert 32 < lesson01.file_bits_per_weight(path) < 40  # float32 weights plus the header's share


def test_reference_solution_passes(tiny_gguf):
    path, _ = tiny_gguf
    registry = __import__("pandas").DataFrame({"size": [path.stat().st_size]}, index=["tiny"])
    namespace = {"registry": registry, "counts": {"tiny": 3000}, "chat_models": ["tiny"], "my_bits": None}
    exec(compile((SOLUTIONS / "01-bits.py").read_text(), "01-bits", "exec"), namespace)
    assert lesson01.bits_judge({"tiny": path})(namespace["my_bits"]) is None


def test_bytes_per_weight_is_rejected_with_a_hint(tiny_gguf):
    path, stored = tiny_gguf
    message = lesson01.bits_judge({"tiny": path})({"tiny": path.stat().st_size / stored})
    assert message and "tiny" in message and "bytes per weight" in message


def test_dividing_by_the_cards_count_is_rejected_with_a_hint(tiny_gguf):
    path, _ = tiny_gguf
    card = 2000  # the card counts the embedding table once
    message = lesson01.bits_judge({"tiny": path}, {"tiny": card})({"tiny": path.stat().st_size * 8 / card})
    assert message and "model card" in message


def test_a_missing_model_or_a_wrong_shape_is_named(tiny_gguf):
    path, _ = tiny_gguf
    assert "no entry for tiny" in lesson01.bits_judge({"tiny": path})({})
    assert "store a dict" in lesson01.bits_judge({"tiny": path})([5.0])
    assert "not a number" in lesson01.bits_judge({"tiny": path})({"tiny": "five"})
