"""Lesson 07's exercise judges (workshop_lib/exercises/lesson07.py): each rejects a plausible wrong answer
with a message that says which case failed, and accepts the reference solution in notebooks/solutions/."""
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from workshop_lib.exercises import lesson07

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (the page's npm packages do too)")


def solution(name: str, **namespace) -> dict:
    exec((SOLUTIONS / f"{name}.py").read_text(), namespace)
    return namespace


@needs_node
def test_threads_reference_solution_passes():
    assert lesson07.judge_threads(solution("07-threads")["my_choose_threads"]) is None


@needs_node
def test_threads_wllamas_default_of_half_the_cores_is_rejected():
    message = lesson07.judge_threads("function chooseThreads(cores, isolated) { return Math.max(1, Math.floor(cores / 2)); }")
    assert "with 2 cores on an isolated page it returned 1" in message and "one thread per core" in message


@needs_node
def test_threads_ignoring_cross_origin_isolation_is_rejected():
    message = lesson07.judge_threads("(cores, isolated) => cores")
    assert "not cross-origin isolated it returned 8" in message and "SharedArrayBuffer" in message


@needs_node
def test_threads_syntax_error_and_non_text_are_explained():
    assert "Node.js could not run it" in lesson07.judge_threads("function chooseThreads(cores { return 1 }")
    assert "JavaScript text" in lesson07.judge_threads(2)


def tiny_corpus():
    chunks = [SimpleNamespace(id=f"c{i}", path=f"doc{i}.md") for i in range(3)]
    vectors = np.eye(3, dtype=np.float32)
    queries = {"first": np.array([1.0, 0.1, 0.0]), "third": np.array([0.0, 0.2, 1.0])}
    page_hits = {q: {"id": chunks[int(np.argmax(vectors @ v))].id,
                     "path": chunks[int(np.argmax(vectors @ v))].path} for q, v in queries.items()}
    embedder = SimpleNamespace(embed=lambda texts: np.array([queries[t] / np.linalg.norm(queries[t]) for t in texts]))
    return chunks, vectors, page_hits, embedder


def test_top_hit_reference_solution_passes():
    chunks, vectors, page_hits, embedder = tiny_corpus()
    top_chunk = solution("07-top-hit", embedder=embedder, index_vectors=vectors)["top_chunk"]
    assert lesson07.top_hit_judge(page_hits, chunks)(top_chunk) is None


def test_top_hit_least_similar_chunk_is_rejected():
    chunks, vectors, page_hits, embedder = tiny_corpus()
    message = lesson07.top_hit_judge(page_hits, chunks)(lambda q: int((vectors @ embedder.embed([q])[0]).argmin()))
    assert "the page ranked doc0.md first" in message and "most similar" in message


def test_top_hit_returning_a_path_instead_of_a_row_is_rejected():
    chunks, _, page_hits, _ = tiny_corpus()
    message = lesson07.top_hit_judge(page_hits, chunks)(lambda q: "doc0.md")
    assert "return the row number" in message


def test_ratio_reference_solution_is_a_number():
    assert solution("07-ratio")["my_predicted_ratio"] > 0
