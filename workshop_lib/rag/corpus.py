"""The corpus: llama.cpp's own documentation, and its chunks (taught in 04_rag and 07_browser_inference).

The pinned ``llama-cpp-python`` sdist that setup unpacks for the build carries llama.cpp's source with
about 120 Markdown files (about 1 MB, MIT licence): the server's README, build and backend guides,
quantization, speculative decoding and more. We read them from there; nothing is copied into the repo.
A chunk keeps its file and heading path, which is what an answer cites.
"""
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..runtime import llamacpp

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Chunk:
    id: str       # "path#n", stable for a given corpus and settings
    path: str     # file, relative to the llama.cpp source root
    heading: str  # heading path, e.g. "LLaMA.cpp HTTP Server > Usage"
    text: str


def load_documents(root=None) -> dict:
    """``{relative path: text}`` of every Markdown file of the llama.cpp source, its own third-party
    ``vendor/`` folders left out (they document other projects)."""
    root = Path(root) if root else llamacpp.ensure_source()
    files = sorted(p for p in root.rglob("*.md") if "vendor" not in p.relative_to(root).parts)
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8", errors="replace") for p in files}


def sections(text: str) -> list:
    """``[(heading path, body)]``: the text cut at Markdown headings, never inside a code fence."""
    found, trail, body, fenced = [], [], [], False
    for line in text.splitlines():
        fenced ^= bool(FENCE.match(line))
        match = None if fenced else HEADING.match(line)
        if match:
            found.append((" > ".join(t for _, t in trail), "\n".join(body)))
            level = len(match.group(1))
            trail = [(lv, t) for lv, t in trail if lv < level] + [(level, match.group(2))]
            body = []
        else:
            body.append(line)
    found.append((" > ".join(t for _, t in trail), "\n".join(body)))
    return [(heading, body.strip()) for heading, body in found if body.strip()]


def split_with_overlap(text: str, max_chars: int, overlap: int) -> list:
    """Pieces of at most ``max_chars``, cut at paragraph or line ends where possible, each starting
    ``overlap`` characters before the previous one ended, so a fact on a boundary is in both."""
    pieces, start = [], 0
    while start < len(text):
        end = min(start + max_chars, len(text))
        if end < len(text):  # prefer a blank line, then a line end, in the second half of the window
            cut = max(text.rfind("\n\n", start + max_chars // 2, end), text.rfind("\n", start + max_chars // 2, end))
            end = cut if cut > start else end
        pieces.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return [p for p in pieces if p]


def chunk_markdown(path: str, text: str, max_chars: int = 1200, overlap: int = 200) -> list:
    """One file's chunks: a section per heading, long sections split with overlap."""
    chunks = []
    for heading, body in sections(text):
        for piece in split_with_overlap(body, max_chars, overlap):
            chunks.append(Chunk(f"{path}#{len(chunks)}", path, heading, piece))
    return chunks


def chunk_documents(docs: dict, max_chars: int = 1200, overlap: int = 200) -> list:
    """Every document's chunks, in file order."""
    return [c for path, text in docs.items() for c in chunk_markdown(path, text, max_chars, overlap)]


def default_chunks() -> list:
    """The chunks lessons 04 and 07 share: llama.cpp's docs, 1200 characters, 200 overlap."""
    return chunk_documents(load_documents())


def corpus_fingerprint(chunks: list) -> str:
    """A short hash of the chunks, for caches that must be rebuilt when the corpus or settings change."""
    digest = hashlib.sha256()
    for c in chunks:
        digest.update(f"{c.id}\0{c.heading}\0{c.text}\0".encode())
    return digest.hexdigest()[:16]
