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


def model_shape(path) -> dict:
    """``layers``, ``kv_heads`` and ``head_dim_k`` of the GGUF at ``path``, from its metadata (needs the
    ``gguf`` package): the head dimension is the key length where the file stores one, else the
    embedding width divided by the number of attention heads."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    arch = _field(fields, "general.architecture")
    heads = _field(fields, f"{arch}.attention.head_count")
    head_dim = _field(fields, f"{arch}.attention.key_length") or _field(fields, f"{arch}.embedding_length") // heads
    return {"layers": int(_field(fields, f"{arch}.block_count")),
            "kv_heads": int(_field(fields, f"{arch}.attention.head_count_kv") or heads), "head_dim_k": int(head_dim)}


def _field(fields: dict, key: str):
    """One metadata value of a GGUF file (a string or a number), None when the file has no such key."""
    field = fields.get(key)
    if field is None:
        return None
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types and field.types[0].name == "STRING" else value.tolist()[0]


def fits_in_ram(model_bytes: float, shape: dict, ram_gb=(4, 8, 16), context: int = 4096,
                cache_types=("f16", "q8_0")) -> "pd.DataFrame":
    """For each free RAM size and KV cache type: the longest context one slot can hold once the model file
    is in memory, and how many slots of ``context`` tokens fit. The KV cache only, from the model's shape:
    the server's working buffers and the rest of the system need room of their own."""
    import pandas as pd

    rows = []
    for ram in ram_gb:
        for cache in cache_types:
            per_token = kv_cache_bytes(shape["layers"], shape["kv_heads"], shape["head_dim_k"], 1, BYTES_PER_VALUE[cache])
            free = max(0.0, ram * 1e9 - model_bytes)
            rows.append({"ram_gb": ram, "kv_type": cache, "kv_kib_per_token": per_token / 1024,
                         "max_context_one_slot": int(free // per_token),
                         f"slots_of_{context}": int(free // (per_token * context))})
    return pd.DataFrame(rows)
