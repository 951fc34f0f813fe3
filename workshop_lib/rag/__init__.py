"""Retrieval-augmented answers over real documentation (taught in 04_rag; lesson 07 searches the same chunks).

``corpus``: llama.cpp's Markdown docs and their chunks; ``index``: BM25 and MiniLM vectors, cached on
disk; ``search``: the three retrievers (``retrieve``); ``answer``: grounded prompts, refusals, cited answers;
``refusal``: the second refusal stage (the model's verdict on the sources, unsupported terms) and the
lesson's whole pipeline (``grounded_answer``); ``evaluate``: the question sets and their scores.
"""
from .answer import (NOT_FOUND, THRESHOLD, CitedAnswer, answer, cited_answer, citations, grounded_messages,
                     is_refusal, is_relevant)
from .corpus import Chunk, chunk_documents, chunk_for_encoder, chunk_markdown, default_chunks, load_documents
from .evaluate import load_questions
from .index import Index, build_index, default_index, encoder_coverage
from .refusal import grounded_answer, sources_answer, unsupported_terms
from .search import METHODS, fuse, retrieve

__all__ = ["Chunk", "chunk_documents", "chunk_for_encoder", "chunk_markdown", "encoder_coverage", "grounded_answer",
           "sources_answer", "unsupported_terms", "default_chunks", "load_documents", "Index",
           "build_index", "default_index", "METHODS", "fuse", "retrieve", "NOT_FOUND", "THRESHOLD", "answer",
           "CitedAnswer", "cited_answer",
           "citations", "grounded_messages", "is_refusal", "is_relevant", "load_questions"]
