"""Reading a structured (JSON) answer while it streams: the answer's text, before the JSON is complete.

A server that constrains its output to a JSON schema still streams it a few characters at a time:
``{"answerable": true, "sources": [2], "answer": "Use \\"-np 4\\" ...``. A chat app wants to show the
answer text as it is decoded, not the raw JSON, so ``FieldStream`` decodes one string field
incrementally: escapes (``\\n``, ``\\"``, ``\\u00e9``, surrogate pairs) may be split across chunks.
"""
import json
import re

ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class FieldStream:
    """Feed the JSON text chunk by chunk; each ``feed`` returns the newly decoded part of the string
    field ``name`` ("" while it has not started, or while an escape is still incomplete)."""

    def __init__(self, name: str = "answer"):
        self.buffer = ""
        self.done = False  # the field's closing quote has arrived
        self._key = re.compile(r'"%s"\s*:\s*"' % re.escape(name))
        self._pos = None   # index in ``buffer`` of the next undecoded character of the value

    @property
    def started(self) -> bool:
        return self._pos is not None

    def feed(self, chunk: str) -> str:
        self.buffer += chunk
        if self._pos is None:
            found = self._key.search(self.buffer)
            if not found:
                return ""
            self._pos = found.end()
        decoded = []
        while not self.done and self._pos < len(self.buffer):
            piece, width = self._next_character()
            if width == 0:  # an escape cut by the chunk boundary: wait for the rest
                break
            decoded.append(piece)
            self._pos += width
        return "".join(decoded)

    def _next_character(self):
        """``(text, characters consumed)`` at ``_pos``; width 0 when more input is needed."""
        text, at = self.buffer, self._pos
        if text[at] == '"':
            self.done = True
            return "", 0
        if text[at] != "\\":
            return text[at], 1
        if at + 1 >= len(text):
            return "", 0
        if text[at + 1] != "u":
            return ESCAPES.get(text[at + 1], text[at + 1]), 2
        return _unicode_escape(text, at)


def _unicode_escape(text: str, at: int):
    """``\\uXXXX`` at ``at``, joined with the low half of a surrogate pair when one follows."""
    if at + 6 > len(text):
        return "", 0
    try:
        code = int(text[at + 2:at + 6], 16)
    except ValueError:  # not valid JSON; keep the characters rather than fail mid-answer
        return text[at:at + 6], 6
    if 0xD800 <= code < 0xDC00:
        if at + 12 > len(text):
            return "", 0
        low = text[at + 6:at + 12]
        if low.startswith("\\u"):
            try:
                return json.loads(f'"{text[at:at + 12]}"'), 12
            except ValueError:
                pass
    return chr(code), 6


def flag(text: str, name: str):
    """The boolean field ``name`` of a (possibly partial) JSON object, or None if not there yet."""
    found = re.search(r'"%s"\s*:\s*(true|false)' % re.escape(name), text)
    return None if found is None else found.group(1) == "true"


def numbers(text: str, name: str) -> list:
    """The integers of the array field ``name`` of a (possibly partial) JSON object."""
    found = re.search(r'"%s"\s*:\s*\[([^\]]*)' % re.escape(name), text)
    return [int(n) for n in re.findall(r"-?\d+", found.group(1))] if found else []


def parse(text: str, field: str = "answer") -> dict:
    """The reply as a dict; a reply cut short (``max_tokens``) or not JSON at all is read field by
    field as far as it goes, so a long answer is shown, not lost."""
    try:
        reply = json.loads(text)
        if isinstance(reply, dict):
            return reply
    except ValueError:
        pass
    stream = FieldStream(field)
    partial = stream.feed(text)
    return {"answerable": flag(text, "answerable"), "sources": numbers(text, "sources"),
            field: partial if stream.started else text, "complete": False}
