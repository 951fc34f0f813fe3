"""The KV cache's size from a model's shape, checked against what llama-server logged (taught in 03).

For every token it has read, each layer keeps a key (K) and a value (V) vector per KV head, so the cache
takes layers x 2 x KV heads x head dimension x bytes per number x tokens. llama-server prints the
model's shape (``print_info: n_layer = ...``) and the buffer it allocated (``llama_kv_cache: size =
... MiB (N cells, ...)``) when it loads a model; in router mode each child's lines come prefixed with
``[port]``, which keeps two models' lines apart. The pinned llama-server prints these lines only at log
verbosity 4 (``-lv 4``).
"""
import re

SHAPE_FIELDS = {"layers": "n_layer", "kv_heads": "n_head_kv", "head_dim_k": "n_embd_head_k",
                "head_dim_v": "n_embd_head_v"}
KV_LINE = re.compile(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers, +(\d+)/(\d+) seqs\), "
                     r"K \((\w+)\): +([\d.]+) MiB, V \((\w+)\): +([\d.]+) MiB")
BYTES_PER_VALUE = {"f32": 4, "f16": 2, "bf16": 2, "q8_0": 34 / 32, "q4_0": 18 / 32}


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, bytes_per_value: float = 2) -> float:
    """Bytes of K plus V for ``tokens`` tokens (f16, 2 bytes per number, is llama.cpp's default)."""
    return layers * 2 * kv_heads * head_dim * bytes_per_value * tokens


def logged_caches(log_text: str) -> list:
    """Every KV cache a llama-server log reports, last load of each child last: the model file, its shape,
    the cells (tokens) allocated, the logged size in bytes, and the size the formula gives for them."""
    loads = []
    for source, lines in _by_child(log_text).items():
        load = {}
        for line in lines:
            if m := re.search(r"loaded meta data .* from (\S+)", line):
                load = {"child": source, "model_file": m.group(1)}
            for key, field in SHAPE_FIELDS.items():
                if m := re.search(rf"print_info: {field} += (\d+)\s*$", line):
                    load[key] = int(m.group(1))
            if (m := KV_LINE.search(line)) and "layers" in load:
                loads.append(_with_sizes(load, m))
    return loads


def _by_child(log_text: str) -> dict:
    """Lines grouped by the ``[port]`` prefix router mode gives each child ("" for the server's own)."""
    groups = {}
    for line in log_text.splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s?(.*)", line)
        groups.setdefault(m.group(1) if m else "", []).append(m.group(2) if m else line)
    return groups


def _with_sizes(load: dict, m: re.Match) -> dict:
    # "N cells" is per stream; without a unified cache each of the seqs (slots) has its own stream
    cells, k_type, v_type = int(m.group(2)) * int(m.group(5)), m.group(6), m.group(8)
    formula = (kv_cache_bytes(load["layers"], load["kv_heads"], load["head_dim_k"], cells, BYTES_PER_VALUE[k_type])
               + kv_cache_bytes(load["layers"], load["kv_heads"], load["head_dim_v"], cells, BYTES_PER_VALUE[v_type])) / 2
    return {**load, "cells": cells, "seqs": int(m.group(5)), "k_type": k_type,
            "logged_bytes": float(m.group(1)) * 2**20, "formula_bytes": formula,
            "per_token_bytes": formula / cells}
