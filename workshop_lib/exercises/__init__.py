"""Exercises that wait for the learner, and reference solutions kept outside the notebooks.

An exercise cell starts with ``# EXERCISE <id>`` and holds only the learner's placeholder (``my_x = None``, or a
function whose body raises ``NotImplementedError``). The cell after it calls :func:`check` (or :func:`predict`):

* an answer still at its placeholder is **not attempted**: said, with what to do; nothing fails;
* otherwise a *judge* decides: it returns ``None`` when the answer is right, else a sentence saying what is wrong.

The reference solution of exercise ``<id>`` is ``notebooks/solutions/<id>.py``, the whole replacement text of the
cell (``%load solutions/<id>.py`` puts it into the cell). The test command runs the notebooks once with
``WORKSHOP_SOLUTIONS=1``: then each exercise cell runs its solution instead (see :func:`install_solutions`) and,
with ``WORKSHOP_EXPECT=solved``, a wrong solution fails the run. ``WORKSHOP_EXPECT=unanswered`` makes the final
checks assert that every exercise said "not attempted" (Run All by a learner who has not answered).

This package sits on top of the others: only notebooks import it; its ``lessonNN`` modules hold each lesson's
judges, which compute what they compare with from the library, never from the formula the learner is asked for.
"""
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..config import REPO_ROOT

SOLUTIONS_DIR = REPO_ROOT / "notebooks" / "solutions"
NOT_ATTEMPTED, CORRECT, WRONG = "not attempted", "correct", "not yet"
HEADER = re.compile(r"^# EXERCISE ([A-Za-z0-9_.-]+)\s*$")

Judge = Callable[[Any], Optional[str]]


@dataclass
class Outcome:
    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == CORRECT


class ExerciseFailed(AssertionError):
    """A reference solution (or, in a test, a wrong answer) the judge rejected."""


_outcomes: dict = {}  # exercise id -> its latest Outcome, for assert_expected()


def expectation() -> str:
    """'solved', 'unanswered' or '' (a learner: nothing is asserted about the answers)."""
    value = os.environ.get("WORKSHOP_EXPECT", "").strip().lower()
    if value not in ("", "solved", "unanswered"):
        raise ValueError(f"WORKSHOP_EXPECT={value!r}: use 'solved', 'unanswered' or leave it unset")
    return value


def is_placeholder(answer) -> bool:
    """None and ``...`` are the placeholders a learner replaces; functions are probed by the judge."""
    return answer is None or answer is Ellipsis


def check(exercise: str, answer, judge: Judge, how: str) -> Outcome:
    """Judge ``answer``; say "not attempted" (and ``how`` to attempt it) while it is still a placeholder."""
    if is_placeholder(answer):
        return _record(Outcome(exercise, NOT_ATTEMPTED, f"{exercise}: not attempted. {how}"))
    try:
        problem = judge(answer)
    except NotImplementedError:
        return _record(Outcome(exercise, NOT_ATTEMPTED, f"{exercise}: not attempted. {how}"))
    except Exception as error:  # the learner's code raised: show it as their mistake, not a crash of the lesson
        problem = f"your code raised {type(error).__name__}: {error}"
    if problem is None:
        return _record(Outcome(exercise, CORRECT, f"{exercise}: correct."))
    return _record(Outcome(exercise, WRONG, f"{exercise}: not yet. {problem}"))


def predict(exercise: str, prediction, measured: float, unit: str = "", how: str = "") -> Outcome:
    """Show a prediction beside the measurement and their ratio; a prediction is never wrong, only far."""
    if is_placeholder(prediction):
        how = how or "write your prediction as a number in the cell above, before you run the measurement"
        return _record(Outcome(exercise, NOT_ATTEMPTED, f"{exercise}: not attempted. {how}"))
    try:
        prediction = float(prediction)
    except (TypeError, ValueError):
        return _record(Outcome(exercise, WRONG, f"{exercise}: not yet. Write the prediction as a number, "
                                                f"not {prediction!r}."))
    ratio = measured / prediction if prediction else float("inf")
    return _record(Outcome(exercise, CORRECT, f"{exercise}: you predicted {prediction:.4g} {unit}, measured "
                                              f"{measured:.4g} {unit}: measured / predicted = {ratio:.2f}."))


def _record(outcome: Outcome) -> Outcome:
    _outcomes[outcome.exercise] = outcome
    print(("✓ " if outcome.passed else "✗ " if outcome.status == WRONG else "· ") + outcome.message)
    if outcome.status == WRONG and expectation() == "solved":
        raise ExerciseFailed(outcome.message)
    return outcome


def outcomes() -> dict:
    return dict(_outcomes)


def assert_expected() -> None:
    """The final checks: under the test command, every exercise solved (first pass) or waiting (second)."""
    expected = expectation()
    assert _outcomes or not expected, "no exercise was checked in this notebook"
    if expected == "solved":
        bad = {k: o.status for k, o in _outcomes.items() if o.status != CORRECT}
        assert not bad, f"reference solutions that did not pass: {bad}"
    elif expected == "unanswered":
        bad = {k: o.status for k, o in _outcomes.items() if o.status != NOT_ATTEMPTED}
        assert not bad, f"exercises that did not wait for the learner (a solution ran?): {bad}"


def close_to(expected: float, rel: float = 0.05, abs_: float = 0.0, what: str = "the value") -> Judge:
    """A judge for a number: right within ``rel`` (relative) or ``abs_`` (absolute) of ``expected``."""
    def judge(answer):
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return f"{what} should be a number, not {type(answer).__name__}."
        if abs(value - expected) <= max(abs_, rel * abs(expected)):
            return None
        direction = "too high" if value > expected else "too low"
        return f"{what} = {value:.4g} is {direction} (off by a factor {value / expected:.2f})." if expected else \
            f"{what} = {value:.4g} is {direction}."
    return judge


def cases(examples, compare: Callable[[Any, Any], bool] = None, what: str = "your function") -> Judge:
    """A judge that calls the learner's function on ``(args, expected)`` examples and names the first miss."""
    compare = compare or _approximately_equal

    def judge(function):
        if not callable(function):
            return f"{what} should be a function (def ...), not {type(function).__name__}."
        for args, expected in examples:
            got = function(*args)
            if got is None:
                return f"{what} returned None for {_short(args)}: did you forget `return`?"
            if not compare(got, expected):
                return f"{what}{_short(args)} returned {_short(got)}; expected {_short(expected)}."
        return None
    return judge


def _approximately_equal(got, expected, rel: float = 1e-6) -> bool:
    if isinstance(expected, (tuple, list)):
        return isinstance(got, (tuple, list)) and len(got) == len(expected) and \
            all(_approximately_equal(g, e, rel) for g, e in zip(got, expected))
    if isinstance(expected, float) or isinstance(got, float):
        try:
            return abs(float(got) - expected) <= rel * max(1.0, abs(expected))
        except (TypeError, ValueError):
            return False
    return got == expected


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def solution_source(exercise: str) -> str:
    """The reference solution's text: what ``%load solutions/<id>.py`` puts into the cell."""
    path = SOLUTIONS_DIR / f"{exercise}.py"
    if not path.exists():
        raise FileNotFoundError(f"exercise {exercise!r} has no reference solution at {path}")
    return path.read_text(encoding="utf-8")


def swap_in_solution(lines: list) -> list:
    """IPython input transformer: an exercise cell's lines become its reference solution's lines."""
    first = next((line for line in lines if line.strip()), "")
    found = HEADER.match(first.rstrip("\n"))
    if not found:
        return lines
    return solution_source(found.group(1)).splitlines(keepends=True)


def install_solutions(shell=None) -> bool:
    """Under ``WORKSHOP_SOLUTIONS=1`` (the test command's solved pass) run exercise cells as their solutions."""
    if os.environ.get("WORKSHOP_SOLUTIONS") != "1":
        return False
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    transformers = shell.input_transformers_cleanup
    if swap_in_solution not in transformers:
        transformers.append(swap_in_solution)
    return True


install_solutions()
