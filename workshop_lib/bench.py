"""Timing one streamed request honestly (taught in 00_setup_and_first_chat, extended in 03_benchmarking).

Everything is measured from a single streamed call with ``time.perf_counter()``:

- TTFT (time to first token) = first chunk whose content is non-empty - request start
- e2e latency = last chunk - request start
- completion / prompt tokens = what the server reports in ``usage`` (asked with ``include_usage``)
- TPOT (time per output token) = (e2e - TTFT) / (completion_tokens - 1): the first token is paid by TTFT
- decode tokens/s = 1 / TPOT
"""
import time

import pandas as pd
from tqdm.auto import tqdm


def stream_once(client, model: str, messages: list, max_tokens: int = 128,
                temperature: float = 0.0, on_text=None) -> dict:
    """Send one streamed chat request and return its timings, token counts and text.

    ``on_text(piece)`` is called for each piece of text as it arrives (e.g. ``print``)."""
    start = time.perf_counter()
    first = None
    pieces, usage, timings = [], None, None
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, temperature=temperature,
        stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        usage = chunk.usage or usage
        timings = (chunk.model_extra or {}).get("timings") or timings  # llama-server's own figures
        piece = chunk.choices[0].delta.content if chunk.choices else None
        if piece:
            first = first or time.perf_counter()
            pieces.append(piece)
            if on_text:
                on_text(piece)
    end = time.perf_counter()
    return _row(model, start, first, end, usage, timings, "".join(pieces))


def _row(model, start, first, end, usage, timings, text) -> dict:
    completion = usage.completion_tokens if usage else None
    ttft = (first - start) if first else None
    decode_s = (end - first) if first else None
    tpot = decode_s / (completion - 1) if completion and completion > 1 and decode_s else None
    return {
        "model": model, "ttft_s": ttft, "e2e_s": end - start, "tpot_s": tpot,
        "decode_tps": 1 / tpot if tpot else None,
        "completion_tokens": completion, "prompt_tokens": usage.prompt_tokens if usage else None,
        "server_decode_tps": (timings or {}).get("predicted_per_second"), "text": text,
    }


def run_prompts(client, models: dict, prompts: list, max_tokens: int = 128, rounds: int = 1,
                warmup: int = 1) -> pd.DataFrame:
    """Each prompt ``rounds`` times on each ``{label: model_id}``, after ``warmup`` untimed requests
    per model (the first request also pays for loading the model)."""
    rows = []
    for label, model in models.items():
        for _ in range(warmup):
            stream_once(client, model, prompts[0], max_tokens=8)
        jobs = [(r, i) for r in range(rounds) for i in range(len(prompts))]
        for r, i in tqdm(jobs, desc=label):
            row = stream_once(client, model, prompts[i], max_tokens=max_tokens)
            rows.append({"role": label, "prompt": i, "round": r, **row})
    return pd.DataFrame(rows)
