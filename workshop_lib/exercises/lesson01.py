"""Judges for lesson 01's exercises (01_foundry_local).

The expected bits per weight come from the GGUF files themselves, read by ``measure.weights``
(the file's bytes and the element count of every tensor it stores), not from the lesson's cells.
"""
import math
from pathlib import Path

from ..measure import weights


def file_bits_per_weight(path) -> float:
    """A GGUF file's average bits per stored weight: its size on disk against its tensors' elements."""
    path = Path(path)
    return path.stat().st_size * 8 / weights.parameter_count(weights.tensor_table(path))


def bits_judge(files: dict, card_parameters: dict = None, tolerance: float = 0.05):
    """Judge for ``{alias: bits per weight}`` over ``files`` (``{alias: path of its GGUF}``).

    ``card_parameters`` (``{alias: weights on the model card}``) lets the hint name the usual slip
    of dividing by the card's rounded count instead of the weights the file stores."""
    expected = {alias: file_bits_per_weight(path) for alias, path in files.items()}

    def judge(answer):
        if not isinstance(answer, dict):
            return f"my_bits is a {type(answer).__name__}; store a dict {{alias: bits per weight}}."
        if missing := [alias for alias in expected if alias not in answer]:
            return f"my_bits has no entry for {', '.join(missing)}: one number per chat model."
        for alias, want in expected.items():
            try:
                got = float(answer[alias])
            except (TypeError, ValueError):
                return f"{alias}: {answer[alias]!r} is not a number of bits."
            if abs(got - want) > tolerance:
                return f"{alias}: {got:.2f} bits per weight, expected {want:.2f}. {_hint(got, want, alias, card_parameters)}"
        return None
    return judge


def _hint(got: float, want: float, alias: str, card_parameters) -> str:
    if math.isclose(got * 8, want, rel_tol=0.01):
        return "Hint: that is bytes per weight; a byte holds 8 bits."
    if math.isclose(got / 8, want, rel_tol=0.01):
        return "Hint: the size is already in bytes; multiply by 8 once, not twice."
    if card_parameters and alias in card_parameters and got > want:
        return ("Hint: divide by the weights the file stores (`counts`), not the model card's count: "
                "the file stores the embedding table twice.")
    return "Hint: the whole file's size in bits, shared by every weight the file stores."
