"""Lesson 02's exercise: the learner's exact McNemar test is judged on cases against measure.stats.mcnemar."""
import math

from workshop_lib import exercises as ex
from workshop_lib.exercises import lesson02


def discordant(first, second):
    return (sum(1 for a, b in zip(first, second) if a and not b), sum(1 for a, b in zip(first, second) if b and not a))


def reference_solution():
    namespace = {}
    exec(ex.solution_source("02-mcnemar"), namespace)
    return namespace["mcnemar_p"]


def test_the_reference_solution_passes():
    assert lesson02.mcnemar_judge()(reference_solution()) is None


def test_a_one_sided_p_is_rejected_and_called_one_tail():
    def one_sided(first, second):
        b, c = discordant(first, second)
        return sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c)
    problem = lesson02.mcnemar_judge()(one_sided)
    assert problem and "one tail" in problem and "two-sided" in problem


def test_an_unpaired_two_proportion_test_is_rejected_with_the_discordant_hint():
    def unpaired(first, second):  # compares the two accuracies as if the items were different
        n = len(first)
        p1, p2 = sum(first) / n, sum(second) / n
        pooled = (p1 + p2) / 2
        se = math.sqrt(2 * pooled * (1 - pooled) / n) or 1.0
        return math.erfc(abs(p1 - p2) / se / math.sqrt(2))
    problem = lesson02.mcnemar_judge()(unpaired)
    assert problem and "discordant" in problem


def test_the_check_says_not_attempted_for_the_placeholder_and_not_yet_for_a_wrong_answer():
    def placeholder(first, second):
        raise NotImplementedError("write this")
    assert ex.check("02-mcnemar", placeholder, lesson02.mcnemar_judge(), how="").status == ex.NOT_ATTEMPTED
    assert ex.check("02-mcnemar", lambda f, s: 0.5, lesson02.mcnemar_judge(), how="").status == ex.WRONG


def test_cases_have_the_counts_they_name():
    first, second = lesson02.paired_scores(20, 1, 6, 10)
    assert len(first) == 37 and discordant(first, second) == (1, 6)
