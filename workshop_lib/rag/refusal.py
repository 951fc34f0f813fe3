"""A second refusal stage, after the cosine gate (taught in 04_rag).

The gate (``answer.is_relevant``) refuses questions far from every chunk: other products, general
knowledge. A question *about llama.cpp* that its docs do not answer lands as close to llama.cpp's chunks
as an answerable one, so the gate lets it through. Two checks that read the sources themselves:

* ``sources_answer``: a separate, short call asking the model whether the numbered sources answer the
  question; its reply is constrained to ``{"answerable": true|false}`` where the server takes a JSON
  schema (llama-server and llama-cpp-python's server both read ``json_object`` with ``schema``), and
  parsed from plain words where it does not.
* ``unsupported_terms``: the answer's exact terms (flags, endpoints, CMake options, programs) that no
  source contains. Invented flags are how a small model fails on these questions, and they are checkable.
"""
import json
import re

import openai

from .answer import NOT_FOUND, REMINDER, RETRIES, grounded_messages

ASK = ("Do not answer yet. Do the sources above state the answer to this question? Reply only with JSON: "
       '{"answerable": true} or {"answerable": false}.')
SCHEMA = {"type": "object", "properties": {"answerable": {"type": "boolean"}}, "required": ["answerable"]}
# Terms a reader would copy: --flags and -f, /endpoints, UPPER_CASE options and variables, llama-* programs.
TERM = re.compile(r"(?<![\w/-])(--?[a-zA-Z][\w-]*)|(?<![\w.:/])(/[a-z][\w{}/.-]*)|\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b"
                  r"|\b(llama-[a-z][\w-]*)")


def verdict_messages(question: str, hits) -> list:
    """The grounded prompt with its last instruction swapped for the yes/no question: the same prefix
    as the answer's, so a server's prompt cache reuses the sources for the answer that follows."""
    messages = grounded_messages(question, hits)
    last = messages[-1]["content"]
    messages[-1] = {**messages[-1], "content": (last.removesuffix(REMINDER) if last.endswith(REMINDER) else last + "\n\n") + ASK}
    return messages


def parse_verdict(reply: str):
    """True or False from ``{"answerable": ...}``, or from a plain yes/no/true/false; None when neither."""
    try:
        value = json.loads(reply or "").get("answerable")
        return value if isinstance(value, bool) else None
    except (ValueError, AttributeError):
        words = set(re.findall(r"[a-z]+", (reply or "").lower())) & {"yes", "no", "true", "false"}
        return None if len(words) != 1 else words <= {"yes", "true"}


def sources_answer(client, model: str, question: str, hits):
    """The model's own verdict: do these sources answer the question? True, False, or None (unparseable).
    A server that rejects the schema is asked again without it."""
    constrained = {"response_format": {"type": "json_object", "schema": SCHEMA}}
    for extra in (constrained, {}):
        try:
            reply = client.with_options(max_retries=RETRIES).chat.completions.create(
                model=model, messages=verdict_messages(question, hits), temperature=0, max_tokens=12, **extra)
            return parse_verdict(reply.choices[0].message.content)
        except openai.BadRequestError:
            if not extra:
                raise
    return None


def answer_terms(text: str) -> list:
    """The exact terms an answer uses (see ``TERM``), each once, in order; file paths such as
    ``/path/to/model.gguf`` are left out, since an answer's example paths are its own."""
    found = ("".join(groups).rstrip(".,;:)-") for groups in TERM.findall(text or ""))
    return list(dict.fromkeys(t for t in found if len(t) > 2 and not (t.startswith("/") and "." in t)))


def unsupported_terms(text: str, hits) -> list:
    """The answer's exact terms that none of the sources contains (case-insensitive)."""
    sources = "\n".join(f"{chunk.heading}\n{chunk.text}" for chunk, _score in hits).lower()
    return [t for t in answer_terms(text) if t.lower() not in sources]


def withhold_unsupported(result: dict, hits) -> dict:
    """The unsupported-terms stage for an answer already given (``answer()``'s, ``CitedAnswer.result()``'s):
    one that names exact terms none of ``hits`` contains becomes a refusal. Adds ``"unsupported"``, those
    terms, and ``"withheld"``, the answer's text a refusal replaced ("" when none was)."""
    missing = [] if result["refused"] else unsupported_terms(result["text"], hits)
    if not missing:
        return {**result, "unsupported": [], "withheld": ""}
    return {**result, "text": NOT_FOUND, "citations": [], "refused": True, "unsupported": missing,
            "withheld": result["text"]}


# The stages the lesson's pipeline uses after the cosine gate: both, since each can only add refusals. No full
# run has yet compared them (evaluate.full_run does, on the test half and data/rag/heldout.json).
USE_VERDICT = True
USE_TERMS = True


def grounded_answer(client, model: str, question: str, k: int = 5, threshold: float = None, on_text=None,
                    max_tokens: int = 300, index=None, verdict: bool = USE_VERDICT, terms: bool = USE_TERMS) -> dict:
    """Lesson 04's pipeline: retrieve; refuse below the cosine ``threshold``; refuse when the model says the
    sources do not answer (``verdict``); else answer, and withhold an answer whose exact terms the sources
    do not contain (``terms``). Returns ``answer.answer``'s dict plus ``"stage"``, the step that refused
    (``""`` when none did), and ``withhold_unsupported``'s ``"withheld"`` and ``"unsupported"``."""
    from .answer import THRESHOLD, citations, is_refusal, is_relevant, stream_chat
    from .search import retrieve
    hits = retrieve(question, k=k, method="hybrid", index=index)
    refused = {"text": NOT_FOUND, "citations": [], "hits": hits, "refused": True, "withheld": "", "unsupported": []}
    if not is_relevant(hits, THRESHOLD if threshold is None else threshold):
        stage = "cosine gate"
    elif verdict and sources_answer(client, model, question, hits) is False:
        stage = "verdict"
    else:
        text = stream_chat(client, model, grounded_messages(question, hits), on_text, max_tokens)
        said = {"text": text, "citations": citations(text, len(hits)), "hits": hits, "refused": is_refusal(text)}
        checked = withhold_unsupported(said, hits) if terms else {**said, "unsupported": [], "withheld": ""}
        stage = "terms" if checked["withheld"] else "model" if said["refused"] else ""
        return {**checked, "stage": stage}
    if on_text:
        on_text(NOT_FOUND)
    return {**refused, "stage": stage}
