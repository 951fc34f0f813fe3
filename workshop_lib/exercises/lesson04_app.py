"""Lesson 04's app exercise: the learner changes the app file; the checker reads the function they changed.

``04-app-scores``: make ``source_label`` in the app file (``notebooks/apps/rag_chat.py``) show each source's
similarity score beside its file and heading. The check takes that one function out of the learner's file
(by its syntax tree: importing the file would import Chainlit, which writes folders into the current
directory) and calls it on sources whose scores it knows.
"""
import ast
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"


@dataclass
class SampleChunk:  # the fields of rag.Chunk that a label may use
    id: str
    path: str
    heading: str
    text: str


SAMPLES = [(1, SampleChunk("a", "tools/server/README.md", "Server-specific params", "-np N"), 0.6234),
           (2, SampleChunk("b", "docs/build.md", "CUDA", "cmake -B build -DGGML_CUDA=ON"), 0.4871),
           (3, SampleChunk("c", "docs/function-calling.md", "Universal support", "--jinja"), 0.7012)]


def app_file(path) -> Path:
    """``path`` as given, else relative to the notebooks folder (where the lesson runs)."""
    given = Path(path)
    return given if given.is_file() or given.is_absolute() else NOTEBOOKS / given


def app_function(path, name: str):
    """The function ``name`` defined at the top level of the file ``path``, compiled on its own."""
    tree = ast.parse(app_file(path).read_text(encoding="utf-8"), filename=str(path))
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    if not found:
        raise LookupError(f"{path} defines no function {name}() at its top level")
    namespace = {}
    exec(compile(ast.Module(body=[found[-1]], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def judge_source_label(path):
    """None when the file's ``source_label`` shows number, file, heading and score; else what is wrong."""
    if not app_file(path).is_file():
        return f"there is no file at {path!r} (paths are relative to the notebooks folder, e.g. 'apps/rag_chat.py')"
    try:
        label = app_function(path, "source_label")
    except (SyntaxError, LookupError) as exc:
        return f"could not read source_label from {path}: {exc}"
    for number, chunk, score in SAMPLES:
        try:
            text = label(number, chunk, score)
        except Exception as exc:  # noqa: BLE001 -- the learner's code: report any failure as feedback
            return (f"source_label({number}, chunk, {score}) raised {type(exc).__name__}: {exc}. It runs alone, "
                    "so use only its arguments (chunk.path, chunk.heading, score)")
        if problem := _label_problem(text, number, chunk, score):
            return f"for source [{number}] ({chunk.path}, score {score}) the label was {text!r}: {problem}"
    return None


def _label_problem(text, number, chunk, score):
    if not isinstance(text, str):
        return "it must return a string"
    if f"[{number}]" not in text:
        return f"keep the number as [{number}]: Chainlit turns it into the link to the passage"
    if chunk.path not in text or chunk.heading not in text:
        return "keep the file and the heading, so the reader knows where the passage comes from"
    shown = [float(x) for x in re.findall(r"\d*\.\d+", text)]
    if not any(abs(x - score) < 0.006 for x in shown):
        return ("it does not show this source's score as a decimal (for example 0.62); "
                "use the third argument, the passage's cosine similarity")
    return None
