"""Prefill and context depth: TTFT against prompt length, and decode speed against how deep in the
context the answer is written (taught in 03_benchmarking).

With the prompt cache off every request computes its whole prompt before the first token, so TTFT is
(almost) the prefill. Prefill reads the prompt in batches: its cost grows about linearly with the length
while the weights dominate, then faster, because attention compares every token with all those before it.
``linear_until`` finds where the measured TTFT leaves the line fitted to the shortest prompts. The same
requests give the decode speed at that depth: each new token attends to the whole context before it.
"""
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..runtime import llamacpp, models, server
from . import bench

WORDS = ("the server reads every token of the prompt before it writes the first word of its answer and "
         "a longer context costs more time for each new token because attention looks at all of it while "
         "memory holds the keys and values of every layer for every token seen so far").split()


def filler_prompt(words: int, seed: int = 0) -> list:
    """Messages whose user turn is ``words`` words of shuffled English (about one token per word for
    Qwen's tokenizer: the exact count comes back in ``usage.prompt_tokens``), ending with a short task."""
    rng = np.random.default_rng(seed)
    text = " ".join(rng.choice(WORDS, size=words))
    return [{"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": f"{text}\n\nIn one sentence, what is the text above about?"}]


def length_sweep(target, model: str, lengths=(64, 256, 1024, 2048), rounds: int = 1, max_tokens: int = 32,
                 plan=None) -> pd.DataFrame:
    """TTFT, prefill tokens/s and decode tokens/s for prompts of about ``lengths`` words, the prompt cache
    off (``plan``), ``rounds`` times each, lengths interleaved round by round (a machine that slows down
    during the sweep slows every length alike). One row per request; failed ones keep their reason."""
    plan = plan or bench.plan_requests(target, [model], verbose=False)
    client, rows = bench.client_of(target), []
    bench.stream_once(client, model, plan.request(filler_prompt(16)), max_tokens=4, **plan.options(model))
    jobs = [(r, n) for r in range(rounds) for n in lengths]
    for r, n in tqdm(jobs, desc="prompt-length sweep"):
        row = bench.stream_once(client, model, plan.request(filler_prompt(n, seed=r)), max_tokens=max_tokens,
                                **plan.options(model))
        rows.append({"phase": "prefill", "round": r, "words": n, "cache": plan.cache, **row})
    out = pd.DataFrame(rows)
    if "ttft_s" in out:
        # a server without usage leaves prompt_tokens empty: no prefill speed then, rather than a guess
        out["prefill_tps"] = pd.to_numeric(out["prompt_tokens"], errors="coerce") / pd.to_numeric(out["ttft_s"], errors="coerce")
    return out


def summarize_lengths(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per prompt length: median prompt tokens, TTFT, prefill and decode tokens/s."""
    ok = rows[rows["status"] == "ok"]
    columns = [c for c in ("prompt_tokens", "ttft_s", "prefill_tps", "decode_tps", "server_prefill_tps",
                           "server_decode_tps") if c in ok and ok[c].notna().any()]
    table = ok.groupby("words")[columns].median().reset_index()
    table["requests"] = ok.groupby("words").size().values
    return table


def linear_until(table: pd.DataFrame, fit_points: int = 3, tolerance: float = 0.2) -> dict:
    """Fit TTFT = fixed + per_token x prompt_tokens to the ``fit_points`` shortest prompts and find the
    first longer prompt whose TTFT exceeds that line by more than ``tolerance`` (20 %).

    Returns the fit (``fixed_s``, ``per_token_s``), ``linear_up_to`` (the longest prompt still on the line)
    and ``departs_at`` (the first one above it, None if every prompt stayed on it)."""
    t = table.dropna(subset=["prompt_tokens", "ttft_s"]).sort_values("prompt_tokens") if "prompt_tokens" in table else table[:0]
    if "prompt_tokens" not in t or t["prompt_tokens"].nunique() < 2:  # one length (or one token count) draws no line
        return {"fixed_s": None, "per_token_s": None, "linear_up_to": None, "departs_at": None}
    head = t.iloc[:max(2, min(fit_points, len(t)))]
    per_token, fixed = np.polyfit(head["prompt_tokens"], head["ttft_s"], 1)
    predicted = fixed + per_token * t["prompt_tokens"]
    above = t[t["ttft_s"] > (1 + tolerance) * predicted]
    above = above[above["prompt_tokens"] > head["prompt_tokens"].max()]
    departs = int(above["prompt_tokens"].iloc[0]) if len(above) else None
    within = t[t["prompt_tokens"] < departs] if departs else t
    return {"fixed_s": float(fixed), "per_token_s": float(per_token),
            "linear_up_to": int(within["prompt_tokens"].iloc[-1]), "departs_at": departs}


def bench_depths(model_path, threads: int, depths, n_gen: int = 32, repetitions: int = 3) -> pd.DataFrame:
    """llama-bench's decode tokens/s after each of ``depths`` tokens of context (``-d``): the sweep's
    decode column asked of llama.cpp directly, with no HTTP, chat template or client in the way. Its mean
    over ``repetitions`` (one short run is easily moved by a second of other work on a laptop)."""
    rows = []
    for depth in tqdm(depths, desc="llama-bench -d"):
        result = llamacpp.llama_bench(model_path, threads, n_prompt=0, n_gen=n_gen, repetitions=repetitions,
                                      depth=int(depth))
        rows.append({"prompt_tokens": result["depth"], "bench_decode_tps": result["tg_tps"],
                     "bench_decode_std": result["tg_std"]})
    return pd.DataFrame(rows)


def with_bench_depths(lab, model: str, table: pd.DataFrame, n_gen: int = 32) -> pd.DataFrame:
    """``table`` (``summarize_lengths``) with llama-bench's decode speed at each prompt's depth beside the
    server's (``bench_decode_tps``) and their ratio (``server/llama-bench``); unchanged where
    ``bench.shares_model_file`` says no or the server sent no prompt token counts."""
    if not bench.shares_model_file(lab, model) or "prompt_tokens" not in table or table["prompt_tokens"].isna().any():
        return table
    bench_table = bench_depths(models.get_spec(model).path, server.threads(), table["prompt_tokens"].round(), n_gen)
    out = table.assign(bench_decode_tps=bench_table["bench_decode_tps"].to_numpy(),
                       bench_decode_std=bench_table["bench_decode_std"].to_numpy())
    out["server/llama-bench"] = out["decode_tps"] / out["bench_decode_tps"]
    return out
