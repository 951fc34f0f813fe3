"""Retrieval over real documentation (taught in 04_rag; lesson 07 searches the same chunks in the page).

Landed so far: the corpus and its Markdown-aware chunks (``corpus``). Retrieval, answers and their
scores follow with lesson 04.
"""
from .corpus import Chunk, chunk_documents, chunk_markdown, default_chunks, load_documents

__all__ = ["Chunk", "chunk_documents", "chunk_markdown", "default_chunks", "load_documents"]
