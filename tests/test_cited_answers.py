"""Cited answers by construction (issue 20.4): the structured reply, read while it streams, no server.

``FieldStream`` must give the answer's text exactly as ``json.loads`` would, whatever the chunk
boundaries; ``CitedAnswer`` must ask each server style for the schema its way, show the reader the
answer (never the JSON), and turn the model's own "not answerable" into the refusal.
"""
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from workshop_lib.rag import NOT_FOUND, CitedAnswer
from workshop_lib.rag.answer import answer_schema, sources_line_citations
from workshop_lib.rag import structured

REPLY = {"answerable": True, "sources": [2, 1],
         "answer": 'Set "-np 4" (see [2]).\nUnicode: caf\u00e9 \U0001F600 tab\tend \\ slash/'}
RAW = json.dumps(REPLY)  # escapes: \", \n, \t, \\, \u00e9 and a surrogate pair for the emoji


@dataclass
class Chunk:
    id: str
    path: str
    heading: str
    text: str


HITS = [(Chunk("a", "docs/build.md", "CUDA", "cmake"), 0.5), (Chunk("b", "tools/server/README.md", "Params", "-np"), 0.7),
        (Chunk("c", "docs/x.md", "", "x"), 0.45)]


def split_every(text, n):
    return [text[i:i + n] for i in range(0, len(text), n)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(RAW)])
def test_the_answer_field_decodes_the_same_whatever_the_chunk_boundaries(size):
    field = structured.FieldStream("answer")
    pieces = [field.feed(chunk) for chunk in split_every(RAW, size)]
    assert "".join(pieces) == REPLY["answer"]
    assert field.done
    assert not any("\\" in p and "\\" not in REPLY["answer"] for p in pieces)  # no raw escape leaks out


def test_nothing_is_shown_before_the_answer_field_starts():
    field = structured.FieldStream("answer")
    assert field.feed('{"answerable": true, "sources": [1], "answ') == ""
    assert field.feed('er": "Use') == "Use"
    assert field.feed(' \\') == " "  # the escape is incomplete: held back
    assert field.feed('"-np\\"') == '"-np"'


def test_a_reply_cut_by_max_tokens_keeps_what_was_written():
    cut = RAW[:RAW.index("Unicode") + 4]
    reply = structured.parse(cut)
    assert reply["answerable"] is True and reply["sources"] == [2, 1]
    assert reply["answer"].startswith('Set "-np 4"') and reply["complete"] is False
    assert structured.parse(RAW) == REPLY


def chunk(text):
    return SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=text))])


class FakeClient:
    """Records the request; streams ``reply`` a few characters at a time."""

    def __init__(self, reply):
        self.reply, self.requests, self.closed = reply, [], False
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def with_options(self, **kwargs):
        return self

    def create(self, **request):
        self.requests.append(request)
        client = self

        class Stream:
            def __iter__(self):
                return iter([chunk(c) for c in split_every(client.reply, 3)])

            def close(self):
                client.closed = True
        return Stream()


def test_structured_reply_streams_only_the_answer_and_cites_what_it_names():
    client = FakeClient(RAW)
    reply = CitedAnswer(client, "m", "How many slots?", HITS, style="json_schema")
    shown = "".join(reply)
    assert shown == REPLY["answer"] and "{" not in shown
    result = reply.result()
    assert result["citations"] == [2, 1] and not result["refused"] and result["structured"]
    fmt = client.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"] == ["answerable", "sources", "answer"]
    assert fmt["json_schema"]["schema"]["properties"]["sources"]["items"]["enum"] == [1, 2, 3]
    assert client.closed


def test_foundry_style_sends_the_schema_as_a_string():
    client = FakeClient(RAW)
    list(CitedAnswer(client, "m", "q", HITS, style="json_schema_text"))
    schema = json.loads(client.requests[0]["response_format"]["json_schema"])
    assert schema == answer_schema(len(HITS))


def test_the_models_not_answerable_verdict_is_a_refusal_and_nothing_it_wrote_is_shown():
    client = FakeClient(json.dumps({"answerable": False, "sources": [1], "answer": "Probably --magic-flag."}))
    reply = CitedAnswer(client, "m", "q", HITS, style="json_schema")
    assert "".join(reply) == ""
    result = reply.result()
    assert result["refused"] and result["text"] == NOT_FOUND and result["citations"] == []


def test_without_structured_output_the_sources_line_gives_the_citations():
    text = "Use -np 4 [1].\nSources: [2], [3]"
    client = FakeClient(text)
    reply = CitedAnswer(client, "m", "q", HITS, style="")
    assert "".join(reply) == text
    assert "response_format" not in client.requests[0]
    assert "Sources: [1], [3]" in client.requests[0]["messages"][0]["content"]  # the rule, shown by example
    assert reply.result()["citations"] == [2, 3] and not reply.result()["structured"]
    assert sources_line_citations("Answer.\n**Sources:** 1, 9, 2", 3) == [1, 2]  # 9 was never given
    assert sources_line_citations("No line, but [3] cited.", 3) == [3]


def test_numbers_we_never_gave_are_not_citations():
    client = FakeClient(json.dumps({"answerable": True, "sources": [7, 3, 3], "answer": "x"}))
    reply = CitedAnswer(client, "m", "q", HITS, style="json_schema")
    list(reply)
    assert reply.result()["citations"] == [3]


def test_close_stops_the_servers_stream():
    client = FakeClient(RAW)
    reply = CitedAnswer(client, "m", "q", HITS, style="json_schema")
    iterator = iter(reply)
    next(iterator)
    reply.close()
    assert client.closed


def test_the_full_runs_app_answer_scores_the_structured_reply_and_withholds_unsupported_terms():
    from workshop_lib.rag import evaluate
    item = {"id": "q", "question": "How many slots?", "answer": "-np 4", "must_contain": ["-np"], "answerable": True,
            "support": [{"path": "tools/server/README.md", "heading": "Params"}], "kind": "lookup"}
    app = evaluate.app_answer(FakeClient(RAW), "m", item, HITS, "json_schema", 64)
    assert app["correct"] and not app["refused"] and app["cited"] == 2 and app["cited_right"] == 1
    invented = json.dumps({"answerable": True, "sources": [1], "answer": "Pass --slot-magic 4."})
    app = evaluate.app_answer(FakeClient(invented), "m", item, HITS, "json_schema", 64)
    assert app["refused"] and app["unsupported"] == ["--slot-magic"] and not app["correct"] and app["cited"] == 0
