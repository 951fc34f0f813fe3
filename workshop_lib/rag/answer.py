"""Grounded answers: numbered sources in, an answer citing them out, or a plain refusal (taught in 04_rag)."""
import re

from ..runtime.clients import closing

NOT_FOUND = "I could not find this in the llama.cpp documentation."
# Tuned in 04_rag on the even-numbered questions of data/rag/questions.json (checked on the odd ones):
# the best hit's cosine similarity below which we refuse without asking the model.
THRESHOLD = 0.418
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
