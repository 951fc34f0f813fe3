"""What a GGUF file's weights are made of, read from the file itself (taught in 01_foundry_local).

A quantization label such as ``Q4_K_M`` names a recipe: most matrices in one block type, some kept
wider. Each tensor's own type, element count and bytes say where a file's bits go. The parameter
count is the file's, the sum of its tensors' elements: a model card's "0.5B" is a rounded name.

Needs the ``gguf`` package (the ``convert`` extra: ``wl.require("convert")``).
"""
import importlib.util
from pathlib import Path

import pandas as pd



def can_read() -> bool:
    """True if the ``gguf`` package is installed (the ``convert`` extra brings it)."""
    return importlib.util.find_spec("gguf") is not None


def tensor_table(path) -> pd.DataFrame:
    """One row per tensor of the GGUF at ``path``: ``name``, ``type`` (e.g. Q4_K), ``elements``,
    ``bytes``, ``bits_per_weight`` and ``row`` (the length of its rows, the first dimension)."""
    from gguf import GGUFReader

    reader = GGUFReader(Path(path))
    rows = [{"name": t.name, "type": t.tensor_type.name, "elements": int(t.n_elements),
             "bytes": int(t.n_bytes), "row": int(t.shape[0])} for t in reader.tensors]
    table = pd.DataFrame(rows)
    table["bits_per_weight"] = table["bytes"] * 8 / table["elements"]
    return table


def type_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Per tensor type: its share of the file's tensor bytes and weights, and its bits per weight."""
    by_type = table.groupby("type")[["bytes", "elements"]].sum()
    by_type["share_of_bytes"] = by_type["bytes"] / by_type["bytes"].sum()
    by_type["share_of_weights"] = by_type["elements"] / by_type["elements"].sum()
    by_type["bits_per_weight"] = by_type["bytes"] * 8 / by_type["elements"]
    return by_type.sort_values("bytes", ascending=False)


def parameter_count(table: pd.DataFrame) -> int:
    """The file's number of weights: the sum of every tensor's elements."""
    return int(table["elements"].sum())


def decode_footprint(table: pd.DataFrame) -> dict:
    """What one decoding step uses: every matrix is read and multiplied once, except the token-embedding
    table, of which it reads one row (a lookup, no arithmetic). ``bytes_per_step`` and
    ``weights_per_token`` leave that table out; ``output.weight``, when the file stores it, is a matrix
    product like the others."""
    lookup = table["name"] == "token_embd.weight"
    return {"bytes_per_step": int(table.loc[~lookup, "bytes"].sum()),
            "weights_per_token": int(table.loc[~lookup, "elements"].sum()),
            "embedding_bytes": int(table.loc[lookup, "bytes"].sum())}
