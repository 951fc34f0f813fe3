"""Lesson 04's app exercise (04-app-scores): the checker reads ``source_label`` from the learner's app file."""
import ast

import pytest

from workshop_lib.apps import chainlit_app
from workshop_lib.config import REPO_ROOT
from workshop_lib.exercises import lesson04_app

REFERENCE = REPO_ROOT / "notebooks" / "solutions" / "04-app-scores" / "rag_chat.py"
APP = chainlit_app.SCRIPT


def app_with(tmp_path, body: str):
    """A copy of the lesson's app file whose source_label returns ``body``."""
    source = APP.read_text(encoding="utf-8")
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "source_label")
    lines = source.splitlines()
    changed = lines[:node.lineno] + [f"    return {body}"] + lines[node.end_lineno:]
    path = tmp_path / "my_rag_chat.py"
    path.write_text("\n".join(changed) + "\n", encoding="utf-8")
    return path


def test_the_reference_change_passes():
    assert lesson04_app.judge_source_label(REFERENCE) is None
    assert lesson04_app.judge_source_label("solutions/04-app-scores/rag_chat.py") is None  # as the notebook says it


def test_the_unchanged_app_is_told_to_show_the_score():
    said = lesson04_app.judge_source_label(APP)
    assert "does not show this source's score" in said and "0.62" in said


@pytest.mark.parametrize("body, expected", [
    ('f"[{number}] {chunk.path} › {chunk.heading} ({number:.2f})"', "score"),          # the rank, not the score
    ('f"[{number}] {chunk.path} › {chunk.heading} ({score:.0%})"', "as a decimal"),    # a percentage
    ('f"[{number}] {score:.2f}"', "file and the heading"),                             # lost where it comes from
    ('f"{chunk.path} › {chunk.heading} {score:.2f}"', "keep the number as [1]"),       # lost the link
    ('f"[{number}] {chunk.path} › {chunk.heading} {rag.THRESHOLD:.2f}"', "raised NameError"),  # not its arguments
])
def test_plausible_wrong_changes_are_rejected_with_what_to_fix(tmp_path, body, expected):
    said = lesson04_app.judge_source_label(app_with(tmp_path, body))
    assert said and expected in said, said


def test_a_missing_file_or_function_is_said_not_raised(tmp_path):
    assert "no file" in lesson04_app.judge_source_label(tmp_path / "nope.py")
    broken = tmp_path / "broken.py"
    broken.write_text("def source_label(:\n", encoding="utf-8")
    assert "could not read source_label" in lesson04_app.judge_source_label(broken)


def test_the_reference_app_differs_from_the_lessons_only_in_source_label():
    def without_label(path):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        tree.body = [n for n in tree.body if getattr(n, "name", None) != "source_label"]
        return ast.dump(tree)
    assert without_label(REFERENCE) == without_label(APP)
