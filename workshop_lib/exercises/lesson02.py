"""Judges of lesson 02's exercise (02_model_comparison).

- ``02-mcnemar``: the learner's exact McNemar test, ``mcnemar_p(first, second)`` over two lists of 0/1 scores
  on the same items, called on cases and compared with ``measure.stats.mcnemar``.
"""
import numpy as np

from ..measure import stats


def paired_scores(both_right: int, only_first: int, only_second: int, both_wrong: int) -> tuple:
    """Two score lists over the same items with the given counts, shuffled (seeded) so that order says nothing."""
    first = [1] * both_right + [1] * only_first + [0] * only_second + [0] * both_wrong
    second = [1] * both_right + [0] * only_first + [1] * only_second + [0] * both_wrong
    order = np.random.default_rng(both_right * 1000 + only_first * 100 + only_second).permutation(len(first))
    return [first[i] for i in order], [second[i] for i in order]


# (both right, only the first right, only the second right, both wrong): each case defeats a common mistake
MCNEMAR_CASES = [(20, 1, 6, 10), (5, 0, 5, 5), (12, 4, 4, 2), (30, 9, 2, 40), (10, 0, 0, 5), (3, 14, 10, 1)]


def describe(counts: tuple) -> str:
    both_right, only_first, only_second, both_wrong = counts
    return (f"{sum(counts)} items: {both_right} both right, {only_first} only the first right, "
            f"{only_second} only the second right, {both_wrong} both wrong")


def hint(got: float, expected: float, counts: tuple) -> str:
    if np.isclose(got, expected / 2, rtol=1e-6):
        return "that is one tail; the test is two-sided (a split this lopsided in either direction counts)"
    if counts[1] + counts[2] == 0:
        return "with no discordant item there is no evidence either way"
    return ("only the discordant items count (right for one model, wrong for the other); under \"equally good\" "
            "each is a fair coin flip")


def mcnemar_judge():
    """A judge for ``mcnemar_p(first, second) -> p``, compared with ``measure.stats.mcnemar`` on ``MCNEMAR_CASES``."""
    def judge(function):
        if not callable(function):
            return f"mcnemar_p should be a function (def ...), not {type(function).__name__}."
        for counts in MCNEMAR_CASES:
            first, second = paired_scores(*counts)
            expected = stats.mcnemar(first, second).p
            got = function(list(first), list(second))
            if got is None:
                return f"it returned None for {describe(counts)}: did you forget `return`?"
            try:
                got = float(got)
            except (TypeError, ValueError):
                return f"return the p value as a number, not {type(got).__name__}."
            if not np.isclose(got, expected, rtol=1e-6, atol=1e-12):
                return (f"for {describe(counts)} it returned p = {got:.4g}; the exact two-sided p is {expected:.4g}. "
                        f"Hint: {hint(got, expected, counts)}.")
        return None
    return judge
