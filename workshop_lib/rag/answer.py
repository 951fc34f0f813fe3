"""Grounded answers: numbered sources in, an answer citing them out, or a plain refusal (taught in 04_rag).

Two ways to get the citations. ``answer(...)`` asks in words ("cite like [1]") and reads what the model
wrote. ``CitedAnswer`` asks for a structured reply, ``{"answerable", "sources", "answer"}``, with
the server's constrained decoding where it has it (``runtime.capabilities``: the reply cannot leave the
schema, so it always names at least one source), else with a fixed last line ``Sources: [n]``.
"""
import re

from . import structured
from ..runtime.capabilities import response_format
from ..runtime.clients import closing

NOT_FOUND = "I could not find this in the llama.cpp documentation."
# The best hit's cosine similarity below which we refuse without asking the model: tuned in 04_rag on the
# tune half of data/rag/questions.json over the encoder-sized chunks (the highest cut refusing at most 15 % of
# its answerable questions; tests/test_rag.py checks it still is), and reported on the test half.
THRESHOLD = 0.535
# Small models follow the last instruction best, so the citation rule is repeated after the question.
REMINDER = "Answer briefly, and cite the sources you used like [1]."
# A busy server may close a kept-alive connection just as the next request reuses it; the OpenAI client
# retries such failures (and only those, plus 429/5xx) when allowed to.
RETRIES = 2
CITATION = re.compile(r"\[(\d+)\]")

SYSTEM = ("You answer questions about llama.cpp using only the numbered sources you are given. "
          "Cite the sources you use as [1], [2] right after the sentence they support. Quote command-line "
          "flags and commands exactly as the sources write them. Be brief. If the sources do not contain "
          f"the answer, reply exactly: {NOT_FOUND}")


def format_sources(hits) -> str:
    """``[n] path > heading`` followed by the chunk's text, for every hit, numbered from 1."""
    return "\n\n".join(f"[{n}] {chunk.path} > {chunk.heading}\n{chunk.text}"
                       for n, (chunk, _score) in enumerate(hits, start=1))


def grounded_messages(question: str, hits) -> list:
    """The chat messages of a grounded answer: rules, then the numbered sources and the question."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{format_sources(hits)}\n\nQuestion: {question}\n\n"
                                        f"{REMINDER}"}]


def is_relevant(hits, threshold: float = THRESHOLD) -> bool:
    """Whether the best hit is close enough to answer from; scores must be cosines (dense or hybrid)."""
    return bool(hits) and max(score for _chunk, score in hits) >= threshold


def citations(text: str, n_sources: int) -> list:
    """The source numbers an answer cites, in order of first use, ignoring numbers we never gave."""
    found = [int(n) for n in CITATION.findall(text)]
    return list(dict.fromkeys(n for n in found if 1 <= n <= n_sources))


def is_refusal(text: str) -> bool:
    return "could not find this" in text.lower() or text.strip() == ""


def stream_chat(client, model: str, messages: list, on_text=None, max_tokens: int = 300) -> str:
    """The streamed reply's text; ``on_text(piece)`` sees each piece as it arrives (a UI streams it)."""
    pieces = []
    stream = client.with_options(max_retries=RETRIES).chat.completions.create(
        model=model, messages=messages, stream=True, temperature=0, max_tokens=max_tokens)
    with closing(stream):  # an error or Ctrl-C here stops the server's generation too
        for event in stream:
            if event.choices and (piece := event.choices[0].delta.content):
                pieces.append(piece)
                if on_text:
                    on_text(piece)
    return "".join(pieces)


def answer(client, model: str, question: str, k: int = 5, on_text=None, threshold: float = THRESHOLD,
           max_tokens: int = 300, index=None) -> dict:
    """Retrieve, refuse if nothing is relevant, else ask ``model`` for a cited answer (taught in 04_rag).

    Returns ``{"text", "citations", "hits", "refused"}``; ``citations`` are numbers into ``hits``."""
    from .search import retrieve
    hits = retrieve(question, k=k, method="hybrid", index=index)
    if not is_relevant(hits, threshold):
        if on_text:
            on_text(NOT_FOUND)
        return {"text": NOT_FOUND, "citations": [], "hits": hits, "refused": True}
    text = stream_chat(client, model, grounded_messages(question, hits), on_text, max_tokens)
    return {"text": text, "citations": citations(text, len(hits)), "hits": hits, "refused": is_refusal(text)}


# ---------------------------------------------------------------- cited by construction

SOURCES_LINE = re.compile(r"^\s*\**sources?\**\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
STRUCTURED_SYSTEM = ("You answer questions about llama.cpp using only the numbered sources you are given. "
                     "Reply in JSON: answerable is true only if the sources contain the answer; sources lists "
                     "the numbers of the sources the answer comes from; answer is the brief answer, quoting "
                     "command-line flags and commands exactly as the sources write them. If the sources do "
                     f"not contain the answer, set answerable to false and answer: {NOT_FOUND}")
SOURCES_LINE_SYSTEM = (SYSTEM + " End every answer with one last line listing the sources you used, "
                       "exactly like: Sources: [1], [3]")


def answer_schema(n_sources: int) -> dict:
    """The structured reply: the verdict first (so the app knows at once whether to refuse), then the
    sources (at least one, each a number we gave), then the answer text, which is streamed."""
    numbers = list(range(1, n_sources + 1)) or [1]
    return {"type": "object", "additionalProperties": False,
            "required": ["answerable", "sources", "answer"],
            "properties": {"answerable": {"type": "boolean"},
                           "sources": {"type": "array", "items": {"type": "integer", "enum": numbers},
                                       "minItems": 1, "maxItems": min(3, len(numbers))},
                           "answer": {"type": "string"}}}


def cited_messages(question: str, hits, style: str) -> list:
    """The grounded prompt, its rules worded for a JSON reply (``style`` set) or a last Sources line."""
    system = STRUCTURED_SYSTEM if style else SOURCES_LINE_SYSTEM
    reminder = "Reply in the JSON format." if style else "Answer briefly, then the line Sources: [n]."
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"Sources:\n\n{format_sources(hits)}\n\nQuestion: {question}\n\n"
                                        f"{reminder}"}]


class CitedAnswer:
    """One answer to ``question`` from ``hits``, streamed: iterate it for the answer's text as it is
    decoded (never the raw JSON); afterwards ``result()`` has the text, citations and verdict.
    ``style`` is the server's structured-output style (``capabilities.structured_style(lab)``);
    "" asks for a ``Sources: [n]`` line instead. ``close()`` stops the server's generation."""

    def __init__(self, client, model: str, question: str, hits, style: str = "", max_tokens: int = 300):
        self.client, self.model, self.question, self.hits = client, model, question, hits
        self.style, self.max_tokens = style, max_tokens
        self.raw, self.shown, self._stream = "", "", None

    def __iter__(self):
        fmt = response_format(self.style, answer_schema(len(self.hits)), "cited_answer")
        self._stream = self.client.with_options(max_retries=RETRIES).chat.completions.create(
            model=self.model, messages=cited_messages(self.question, self.hits, self.style), stream=True,
            temperature=0, max_tokens=self.max_tokens, **({"response_format": fmt} if fmt else {}))
        field = structured.FieldStream("answer")
        with closing(self._stream):
            for event in self._stream:
                if event.choices and (piece := event.choices[0].delta.content):
                    self.raw += piece
                    if text := self._visible(field, piece):
                        self.shown += text
                        yield text

    def _visible(self, field, piece: str) -> str:
        """What of ``piece`` the reader sees: all of it in plain text; in JSON, the answer field's new
        characters, or nothing once the model has said the sources do not answer (the app refuses)."""
        if not self.style:
            return piece
        text = field.feed(piece)
        return "" if structured.flag(field.buffer, "answerable") is False else text

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def result(self) -> dict:
        """``{"text", "citations", "hits", "refused", "structured", "raw"}`` like ``answer()``'s, plus
        whether the reply was structured; a refusal's text is ``NOT_FOUND``."""
        if self.style:
            reply = structured.parse(self.raw)
            text = str(reply.get("answer") or "")
            refused = reply.get("answerable") is False or is_refusal(text)
            cited = [n for n in reply.get("sources") or [] if isinstance(n, int)]
            cited = list(dict.fromkeys(n for n in cited if 1 <= n <= len(self.hits)))
        else:
            text, refused = self.raw, is_refusal(self.raw)
            cited = sources_line_citations(self.raw, len(self.hits))
        return {"text": NOT_FOUND if refused else text, "citations": [] if refused else cited,
                "hits": self.hits, "refused": refused, "structured": bool(self.style), "raw": self.raw}


def sources_line_citations(text: str, n_sources: int) -> list:
    """The numbers on the last ``Sources:`` line ("[1], [3]" or "1, 3"); without one, every [n] in the text."""
    lines = SOURCES_LINE.findall(text)
    if not lines:
        return citations(text, n_sources)
    found = [int(n) for n in re.findall(r"\d+", lines[-1])]
    return list(dict.fromkeys(n for n in found if 1 <= n <= n_sources))


def cited_answer(client, model: str, question: str, k: int = 5, style: str = "", on_text=None,
                 threshold: float = THRESHOLD, max_tokens: int = 300, index=None) -> dict:
    """Like ``answer()``, with the citations asked for by construction (``CitedAnswer``)."""
    from .search import retrieve
    hits = retrieve(question, k=k, method="hybrid", index=index)
    if not is_relevant(hits, threshold):
        if on_text:
            on_text(NOT_FOUND)
        return {"text": NOT_FOUND, "citations": [], "hits": hits, "refused": True, "structured": bool(style),
                "raw": ""}
    reply = CitedAnswer(client, model, question, hits, style, max_tokens)
    for piece in reply:
        if on_text:
            on_text(piece)
    return reply.result()
