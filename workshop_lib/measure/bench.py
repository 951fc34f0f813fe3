"""Timing streamed requests honestly (taught in 00_setup_and_first_chat and 03_benchmarking).

Every figure of a request comes from that one streamed call, timed with ``time.perf_counter()``:

- TTFT (time to first token) = first chunk whose content is non-empty - request start
- e2e latency = last chunk - request start
- completion / prompt tokens = the server's ``usage`` (asked with ``include_usage``); a server that
  sends none is counted with the model's tokenizer instead and the row is flagged ``tokens_estimated``
- TPOT (time per output token) = (e2e - TTFT) / (completion_tokens - 1): the first token is paid by TTFT
- decode tokens/s = 1 / TPOT
- ITL (inter-token latency) = the gaps between successive content chunks, TTFT excluded

``total_tokens / e2e`` is *not* a speed: it adds the prompt tokens (read in one fast batch) to the
output tokens (written one at a time) and divides by a time that includes the wait for the first token.
"""
import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pandas as pd
from tqdm.auto import tqdm

from . import report
from ..runtime import llamacpp, models, server
from ..datasets import load_prompts
from ..runtime.endpoint import connect


def stream_once(client, model: str, messages: list, max_tokens: int = 128,
                temperature: float = 0.0, on_text=None, tokenizer=None) -> dict:
    """Send one streamed chat request; return its timings, token counts and text as one row.

    Never raises for a failed request: the row's ``status`` says what went wrong. ``on_text(piece)``
    is called as text arrives; ``tokenizer(text)`` counts tokens when the server sends no usage."""
    start, arrivals, pieces, usage, timings = time.perf_counter(), [], [], None, None
    try:
        stream = client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=temperature,
            stream=True, stream_options={"include_usage": True})
        for chunk in stream:
            usage = chunk.usage or usage
            timings = (chunk.model_extra or {}).get("timings") or timings  # llama-server's own figures
            piece = chunk.choices[0].delta.content if chunk.choices else None
            if piece:
                arrivals.append(time.perf_counter())
                pieces.append(piece)
                if on_text:
                    on_text(piece)
    except (openai.APIError, httpx.HTTPError) as exc:
        return {"model": model, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:300],
                "e2e_s": time.perf_counter() - start, "text": "".join(pieces)}
    return timing_row(model, start, arrivals, time.perf_counter(), usage, timings, "".join(pieces), tokenizer)


def timing_row(model, start, arrivals, end, usage, timings, text, tokenizer) -> dict:
    """The metrics of one streamed request from its clock readings (formulas in the module docstring).

    ``arrivals`` are the times text chunks arrived; ``usage`` has ``completion_tokens`` and
    ``prompt_tokens`` or is None; ``timings`` is llama-server's own timings object or None."""
    completion = usage.completion_tokens if usage else (tokenizer(text) if tokenizer else len(arrivals))
    ttft = arrivals[0] - start if arrivals else None
    tpot = (end - arrivals[0]) / (completion - 1) if arrivals and completion > 1 else None
    return {
        "model": model, "status": "ok", "error": "", "ttft_s": ttft, "e2e_s": end - start,
        "tpot_s": tpot, "decode_tps": 1 / tpot if tpot else None, "completion_tokens": completion,
        "prompt_tokens": usage.prompt_tokens if usage else None, "tokens_estimated": usage is None,
        "itl_s": [b - a for a, b in zip(arrivals, arrivals[1:])], "chunks": len(arrivals),
        "server_decode_tps": (timings or {}).get("predicted_per_second"), "text": text,
    }


def llama_server_tokenizer(base_url: str, model: str):
    """A token counter that asks llama-server's ``/tokenize`` (the fallback when usage is missing)."""
    root = base_url.removesuffix("/v1")

    def count(text: str) -> int:
        return len(server.post_json(f"{root}/tokenize", {"model": model, "content": text})["tokens"])
    return count


def run_prompts(client, models: dict, prompts: list, max_tokens: int = 128, rounds: int = 1,
                warmup: int = 1) -> pd.DataFrame:
    """Each prompt ``rounds`` times on each ``{label: model_id}``, one request at a time, after
    ``warmup`` untimed requests per model (the first request also pays for loading the model)."""
    rows = []
    for label, model in models.items():
        for _ in range(warmup):
            stream_once(client, model, prompts[0], max_tokens=8)
        jobs = [(r, i) for r in range(rounds) for i in range(len(prompts))]
        for r, i in tqdm(jobs, desc=label):
            row = stream_once(client, model, prompts[i], max_tokens=max_tokens)
            rows.append({"role": label, "prompt": i, "round": r, "concurrency": 1, **row})
    return pd.DataFrame(rows)


def run_concurrent(client, model: str, prompts: list, concurrency: int, requests: int,
                   max_tokens: int = 128) -> tuple:
    """``requests`` streamed requests, ``concurrency`` of them in flight at once.

    Returns ``(rows, wall_s)``; aggregate output tokens/s = sum(completion_tokens) / wall_s."""
    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        futures = [pool.submit(stream_once, client, model, prompts[i % len(prompts)], max_tokens)
                   for i in range(requests)]
        rows = [{"prompt": i % len(prompts), **f.result()} for i, f in enumerate(futures)]
    return rows, time.perf_counter() - start


def sweep(client, models: dict, prompts: list, levels=(1, 2, 4, 8), requests_per_slot: int = 2,
          max_tokens: int = 128) -> tuple:
    """Throughput against concurrency for each ``{label: model_id}``.

    Returns ``(rows, levels_df)``: every request, and one line per model and level with the
    aggregate output tokens/s and the wall time. Failed requests stay in ``rows`` with their reason."""
    rows, levels_out = [], []
    jobs = [(label, model, level) for label, model in models.items() for level in levels]
    for label, model, level in tqdm(jobs, desc="concurrency sweep"):
        level_rows, wall = run_concurrent(client, model, prompts, level, level * requests_per_slot,
                                          max_tokens)
        rows += [{"role": label, "concurrency": level, **r} for r in level_rows]
        ok = [r for r in level_rows if r["status"] == "ok"]
        levels_out.append({"role": label, "model": model, "concurrency": level, "wall_s": wall,
                           "requests": len(level_rows), "failed": len(level_rows) - len(ok),
                           "output_tokens": sum(r["completion_tokens"] for r in ok),
                           "aggregate_tps": sum(r["completion_tokens"] for r in ok) / wall})
    return pd.DataFrame(rows), pd.DataFrame(levels_out)


def benchmark(client, models: dict, prompts: list, rounds: int = 3, warmup: int = 1,
              max_tokens: int = 64, levels=(1, 2, 4, 8), requests_per_slot: int = 2) -> dict:
    """The whole lab-03 run: sequential rounds, then the concurrency sweep, then server memory.

    Returns DataFrames ``requests`` (every request, sequential and concurrent), ``sweep`` (one line
    per model and concurrency level) and ``memory`` (RSS of each model's server process, if local)."""
    sequential = run_prompts(client, models, prompts, max_tokens, rounds, warmup)
    concurrent, levels_df = sweep(client, models, prompts, levels, requests_per_slot, max_tokens)
    memory = pd.DataFrame([{"role": label, "model": model, "server_rss_mb": server.model_rss_mb(model)}
                           for label, model in models.items()])
    requests = pd.concat([sequential.assign(phase="rounds"), concurrent.assign(phase="sweep")],
                         ignore_index=True)
    return {"requests": requests, "sweep": levels_df,
            "memory": memory}


COUNTING_PROMPT = [{"role": "user", "content": "Count from 1 to 300, separated by spaces."}]


def harness_overhead(lab, role: str = "slm", n_gen: int = 64, rounds: int = 3) -> dict:
    """Decode tokens/s three ways for the same model and threads: this HTTP harness, the server's own
    ``timings``, and ``llama-bench`` (no HTTP at all). Ratios near 1 mean client numbers are trusted.

    The harness and llama-bench take turns, round by round, so that a machine that speeds up or
    slows down during the check (laptops and shared hosts do) affects both alike."""
    model = lab.models[role]
    local = lab.backend == "embedded" and model in models.load_registry()
    stream_once(lab.client, model, COUNTING_PROMPT, max_tokens=8)  # load the model first
    rows, bench_tps = [], []
    for _ in tqdm(range(rounds), desc="harness vs llama-bench" if local else "harness"):
        rows.append(stream_once(lab.client, model, COUNTING_PROMPT, max_tokens=n_gen))
        if local:
            bench_tps.append(llamacpp.llama_bench(models.get_spec(model).path, server.threads(), n_prompt=0,
                                                  n_gen=n_gen, repetitions=1)["tg_tps"])
    rows = pd.DataFrame(rows)
    result = {"model": model, "rounds": rounds, "harness_tps": rows["decode_tps"].median(),
              "server_tps": rows["server_decode_tps"].median()}
    result["harness/server"] = result["harness_tps"] / result["server_tps"]
    if local:
        result["llama_bench_tps"] = float(pd.Series(bench_tps).median())
        result["harness/llama-bench"] = result["harness_tps"] / result["llama_bench_tps"]
    return result


def main(argv=None) -> int:
    """``python -m workshop_lib.measure.bench``: the lab-03 benchmark from a terminal, same options."""
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.measure.bench", description=main.__doc__)
    parser.add_argument("--roles", nargs="+", default=["slm", "llm"], help="roles or model ids")
    parser.add_argument("--prompts", default="bench", help="prompt set under data/prompts/")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--out", default="results/bench", help="folder for JSON, CSV and report.md")
    parser.add_argument("--overhead", action="store_true", help="only the harness overhead check")
    args = parser.parse_args(argv)
    lab = connect()
    if args.overhead:
        for role in args.roles:
            print(json.dumps(harness_overhead(lab, role, args.max_tokens, args.rounds), indent=1))
        return 0
    chosen = {r: lab.models.get(r, r) for r in args.roles}
    result = benchmark(lab.client, chosen, load_prompts(args.prompts), args.rounds, args.warmup,
                       args.max_tokens, tuple(args.concurrency))
    config = {**vars(args), "backend": lab.backend, "models": chosen}
    files = report.export(args.out, config, **result)
    print(files["report"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
