"""Judges of lesson 05's exercises (05_hybrid_routing).

- ``05-escalated-share``: a prediction (``exercises.predict``), nothing to judge;
- ``05-math-check``: the learner's verifier for math replies, judged by what it does on the shipped run's
  stored math replies, whose correctness is known: it must catch wrong replies more often than it
  escalates right ones (``routing.verifiers.score_check``), which "always accept", "always escalate" and a
  coin cannot;
- ``05-apgr``: the learner's APGR function, called on curves and compared with ``routing.metrics.apgr``.
"""
import numpy as np
import pandas as pd

from .. import eval as wle
from ..routing import metrics, verifiers
from ..routing.routers import outcome_table

MIN_MARGIN = 0.2  # catch rate minus false-escalation rate to reach: the baselines score 0, self-consistency 0.23


def math_replies(path=None) -> pd.DataFrame:
    """The shipped run's math items: the question, the small model's greedy ``reply``, its extra sampled
    ``second_reply`` (temperature 0.7), and whether the reply was ``right`` (scored against the reference)."""
    outcomes = wle.load_outcomes(path or wle.SHIPPED)
    outcomes = outcomes[outcomes["status"] == "ok"]
    table = outcome_table(outcomes)
    math = table[table["task"] == "math"]
    second = outcomes[outcomes["variant"] == "sample"].groupby("item_id")["text"].first()
    items = {item.item_id: item for item in wle.data.load_task("math")}  # the questions: GSM8K only
    return pd.DataFrame({"item_id": math["item_id"].to_numpy(),
                         "question": [items[i].prompt for i in math["item_id"]],
                         "reply": math["text_slm"].to_numpy(),
                         "second_reply": math["item_id"].map(second).fillna("").to_numpy(),
                         "right": math["score_slm"].to_numpy(float) > 0.5})


def verdicts_of(check, replies: pd.DataFrame) -> list:
    """``check(question, reply, second_reply)`` on every stored reply; a verdict that is not a bool raises."""
    verdicts = []
    for row in replies.itertuples():
        verdict = check(row.question, row.reply, row.second_reply)
        if not isinstance(verdict, (bool, np.bool_)):
            raise TypeError(f"return True (accept the reply) or False (escalate it), not {verdict!r}")
        verdicts.append(bool(verdict))
    return verdicts


def describe(score: verifiers.CheckScore) -> str:
    return (f"caught {score.caught} of the {score.wrong} wrong replies ({score.catch_rate:.0%}) and escalated "
            f"{score.escalated_right} of the {score.right} right ones ({score.false_escalation_rate:.0%}): "
            f"margin {score.margin:+.2f}")


def math_check_judge(replies: pd.DataFrame = None):
    """A judge for ``check(question, reply, second_reply) -> bool`` (True: accept the small model's reply)."""
    def judge(check):
        if not callable(check):
            return f"the check should be a function (def ...), not {type(check).__name__}."
        data = replies if replies is not None else math_replies()
        try:
            verdicts = verdicts_of(check, data)
            again = verdicts_of(check, data)
        except TypeError as error:
            return str(error)
        if verdicts != again:
            return ("it gave different verdicts to the same replies on a second run: a check must decide from the "
                    "reply (a coin flip averages margin 0, whatever it scores once).")
        score = verifiers.score_check(verdicts, data["right"])
        if score.caught == 0 and score.escalated_right == 0:
            return (f"it accepted all {len(data)} replies, so it caught none of the {score.wrong} wrong ones: that "
                    "is \"always accept\" (margin 0). Read a few wrong replies: what do they lack, or where do "
                    "they disagree with the second answer?")
        if score.caught == score.wrong and score.escalated_right == score.right:
            return (f"it escalated all {len(data)} replies, the {score.right} right ones too: that is \"always "
                    "escalate\" (margin 0), which pays the large model for every request.")
        if not score.margin >= MIN_MARGIN:
            return (f"it {describe(score)}; \"always accept\" and \"always escalate\" score 0, and the bar is "
                    f"{MIN_MARGIN}. "
                    "Hint: two independent answers that end on the same number are rarely both wrong.")
        print(f"Your check {describe(score)}.")
        return None
    return judge


def apgr_cases() -> list:
    """``(what, curve, weak, strong)``: curves a correct APGR must handle, each hard to pass by accident."""
    uneven = pd.DataFrame({"share": [0.0, 0.1, 0.5, 1.0], "quality": [0.2, 0.6, 0.7, 0.8]})
    return [("the straight line of random routing, from (0, 0.2) to (1, 0.8)",
             pd.DataFrame({"share": [0.0, 0.5, 1.0], "quality": [0.2, 0.5, 0.8]}), 0.2, 0.8),
            ("a curve whose shares are unevenly spaced (0, 0.1, 0.5, 1)", uneven, 0.2, 0.8),
            ("the same curve with its rows in another order", uneven.iloc[[2, 0, 3, 1]], 0.2, 0.8),
            ("a curve that dips below all-small (weak 0.5, strong 0.7)",
             pd.DataFrame({"share": np.linspace(0, 1, 5), "quality": [0.5, 0.4, 0.45, 0.65, 0.7]}), 0.5, 0.7)]


APGR_HINTS = {1: "each point counts by the width of the share interval it spans (trapezoids), not equally",
              2: "sort the points by share before you take the area",
              3: "the area is measured from the all-small line, so a dip below it counts against the router"}


def apgr_judge():
    """A judge for ``apgr(curve, weak, strong)``: compared with ``routing.metrics.apgr`` on ``apgr_cases``."""
    def judge(function):
        if not callable(function):
            return f"APGR should be a function (def ...), not {type(function).__name__}."
        for k, (what, curve, weak, strong) in enumerate(apgr_cases()):
            expected = metrics.apgr(curve, weak, strong)
            got = function(curve.copy(), weak, strong)
            if got is None:
                return f"it returned None on {what}: did you forget `return`?"
            if not np.isclose(float(got), expected, atol=1e-6):
                hint = APGR_HINTS.get(k, "the gap recovered is the area between the curve and all-small, "
                                         "divided by the area between all-large and all-small")
                return f"on {what} it returned {float(got):.4f}; the right value is {expected:.4f}. Hint: {hint}."
        return None
    return judge
