"""The exercise framework: answers wait for the learner, judges reject wrong answers, solutions live outside
the notebooks and are swapped in only under the test command's solved pass."""
import json
import re
from pathlib import Path

import pytest

from workshop_lib import exercises as ex

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def source(cell) -> str:
    return "".join(cell["source"])


def exercise_cells(path):
    """(index, id, source) of each cell that starts with `# EXERCISE <id>`."""
    found = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        lines = source(cell).splitlines()
        match = ex.HEADER.match(lines[0]) if cell["cell_type"] == "code" and lines else None
        if match:
            found.append((i, match.group(1), source(cell)))
    return found


def test_placeholder_answers_are_not_attempted_and_nothing_fails(monkeypatch, capsys):
    monkeypatch.setenv("WORKSHOP_EXPECT", "solved")  # not attempted never raises, even in the solved pass
    assert ex.check("t-none", None, ex.close_to(1.0), how="set x").status == ex.NOT_ATTEMPTED
    assert ex.check("t-dots", ..., ex.close_to(1.0), how="set x").status == ex.NOT_ATTEMPTED
    assert "t-none: not attempted. set x" in capsys.readouterr().out


def test_a_function_still_raising_not_implemented_is_not_attempted():
    def tpot(start, arrivals, end):
        raise NotImplementedError("write this")
    judge = ex.cases([((0.0, [1.0, 2.0], 2.0), 1.0)])
    assert ex.check("t-fn", tpot, judge, how="write tpot").status == ex.NOT_ATTEMPTED


def test_a_wrong_number_is_rejected_with_its_direction_and_raises_only_in_the_solved_pass(monkeypatch):
    outcome = ex.check("t-wrong", 2.0, ex.close_to(1.0, what="TPOT"), how="")
    assert outcome.status == ex.WRONG and "too high" in outcome.message and "TPOT" in outcome.message
    monkeypatch.setenv("WORKSHOP_EXPECT", "solved")
    with pytest.raises(ex.ExerciseFailed):
        ex.check("t-wrong", 2.0, ex.close_to(1.0), how="")


def test_a_right_number_passes_within_tolerance():
    assert ex.check("t-right", 1.04, ex.close_to(1.0, rel=0.05), how="").passed
    assert not ex.check("t-right", 1.06, ex.close_to(1.0, rel=0.05), how="").passed


def test_cases_judge_names_the_case_that_failed_and_a_missing_return():
    def off_by_one(n):
        return n + 1

    def forgot_return(n):
        n * 2
    judge = ex.cases([((1,), 2), ((3,), 6)], what="double")
    assert "double(3,) returned 4; expected 6" in judge(off_by_one)
    assert "did you forget `return`" in judge(forgot_return)
    assert judge(lambda n: 2 * n) is None


def test_learner_code_that_raises_is_their_mistake_not_a_crash():
    outcome = ex.check("t-raise", lambda n: 1 / 0, ex.cases([((1,), 1)]), how="")
    assert outcome.status == ex.WRONG and "ZeroDivisionError" in outcome.message


def test_prediction_shows_the_gap_and_waits_when_missing():
    assert ex.predict("t-p", None, 10.0).status == ex.NOT_ATTEMPTED
    outcome = ex.predict("t-p", 5, 10.0, unit="tok/s")
    assert outcome.passed and "measured / predicted = 2.00" in outcome.message
    assert ex.predict("t-p", "fast", 10.0).status == ex.WRONG


def test_assert_expected_fails_when_a_solution_ran_in_the_unanswered_pass(monkeypatch):
    monkeypatch.setattr(ex, "_outcomes", {})
    ex.check("t-a", 1.0, ex.close_to(1.0), how="")
    monkeypatch.setenv("WORKSHOP_EXPECT", "unanswered")
    with pytest.raises(AssertionError, match="did not wait"):
        ex.assert_expected()
    monkeypatch.setenv("WORKSHOP_EXPECT", "solved")
    ex.assert_expected()


def test_solved_pass_swaps_an_exercise_cell_for_its_solution_in_a_real_ipython_shell(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    (tmp_path / "t-demo.py").write_text("# EXERCISE t-demo\nmy_answer = 42\n")
    monkeypatch.setattr(ex, "SOLUTIONS_DIR", tmp_path)
    shell = InteractiveShell.instance()
    try:
        assert not ex.install_solutions(shell)  # a learner's kernel: no swap
        monkeypatch.setenv("WORKSHOP_SOLUTIONS", "1")
        assert ex.install_solutions(shell)
        shell.run_cell("# EXERCISE t-demo\nmy_answer = None  # your answer\n")
        shell.run_cell("other = None\n")
        assert shell.user_ns["my_answer"] == 42 and shell.user_ns["other"] is None
    finally:
        shell.input_transformers_cleanup.remove(ex.swap_in_solution)
        InteractiveShell.clear_instance()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_lesson_has_an_exercise_that_waits_and_a_solution_outside_it(path):
    found = exercise_cells(path)
    assert found, f"{path.name}: no `# EXERCISE <id>` cell"
    for index, exercise, text in found:
        assert re.search(r"=\s*(None|\.\.\.)|NotImplementedError", text), \
            f"{path.name} cell {index}: an exercise cell holds only the learner's placeholder"
        solution = ex.solution_source(exercise)
        assert solution.splitlines()[0] == f"# EXERCISE {exercise}" and solution.strip() != text.strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_is_checked_after_it_and_the_lesson_asserts_the_expectation(path):
    cells = [source(c) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    everything = "\n".join(cells)
    for _, exercise, _ in exercise_cells(path):
        assert re.search(rf"ex\.(check|predict)\(\s*[\"']{re.escape(exercise)}[\"']", everything), \
            f"{path.name}: exercise {exercise} is never checked with ex.check/ex.predict"
    assert "ex.assert_expected()" in cells[-1], f"{path.name}: the checks cell should call ex.assert_expected()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_is_left_inside_a_notebook(path):
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        text = source(cell)
        assert not re.search(r"^# Solution|if my_\w+ is None", text, re.M), f"{path.name} cell {i} holds a solution"


def test_every_solution_file_belongs_to_an_exercise():
    ids = {exercise for path in NOTEBOOKS for _, exercise, _ in exercise_cells(path)}
    orphans = sorted(p.stem for p in ex.SOLUTIONS_DIR.glob("*.py") if p.stem not in ids)
    assert not orphans, f"solutions without an exercise cell: {orphans}"
