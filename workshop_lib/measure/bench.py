"""Timing streamed requests honestly (taught in 00_setup_and_first_chat and 03_benchmarking).

Every figure of a request comes from that one streamed call, timed with ``time.perf_counter()``:

- TTFT (time to first token) = first chunk whose content is non-empty - request start
- e2e latency = last chunk - request start
- completion / prompt tokens = the server's ``usage`` (asked with ``include_usage``); a server that
  sends none is counted with the model's tokenizer (``token_source == "tokenizer"``), or, where no
  tokenizer is reachable, as stream chunks (``token_source == "chunks"``), never silently
- TPOT (time per output token) = (e2e - TTFT) / (completion_tokens - 1): the first token is paid by TTFT
- decode tokens/s = 1 / TPOT
- ITL (inter-token latency) = the gaps between successive content chunks, TTFT excluded

TTFT is the prompt's *prefill* only if the server computed the prompt. llama-server (and llama-cpp-python)
keep the previous prompt's KV cache and reuse its longest common prefix: a repeated prompt then costs
almost nothing. ``RequestPlan`` therefore switches that cache off per request where the server allows
(llama-server's ``cache_prompt: false``) and otherwise makes every prompt unique at its first token.

``total_tokens / e2e`` is *not* a speed: it adds the prompt tokens (read in one batch) to the output
tokens (written one at a time) and divides by a time that includes the wait for the first token.
"""
import argparse
import itertools
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
from tqdm.auto import tqdm

from . import report
from ..runtime import clients, llamacpp, models, server
from ..datasets import load_prompts
from ..errors import WorkshopError
from ..runtime.endpoint import connect


def stream_once(client, model: str, messages: list, max_tokens: int = 128, temperature: float = 0.0,
                on_text=None, tokenizer=None, extra_body=None) -> dict:
    """Send one streamed chat request; return its timings, token counts and text as one row.

    Never raises for a failed request (HTTP error, malformed stream, an error in ``on_text``): the row's
    ``status`` and ``error`` say what went wrong. ``tokenizer(text)`` counts tokens when the server sends
    no usage; ``extra_body`` adds server-specific fields such as ``{"cache_prompt": False}``."""
    start, arrivals, pieces, usage, timings = time.perf_counter(), [], [], None, None
    try:
        # `with`: whatever stops the loop (an error, on_text, Ctrl-C) closes the connection, so the
        # server stops generating in that slot instead of loading the next requests we measure
        with clients.closing(client.chat.completions.create(
                model=model, messages=messages, max_tokens=max_tokens, temperature=temperature,
                stream=True, stream_options={"include_usage": True}, extra_body=extra_body)) as stream:
            for chunk in stream:
                usage = chunk.usage or usage
                timings = (chunk.model_extra or {}).get("timings") or timings  # llama-server's own figures
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    arrivals.append(time.perf_counter())
                    pieces.append(piece)
                    if on_text:
                        on_text(piece)
        end = time.perf_counter()
        return timing_row(model, start, arrivals, end, usage, timings, "".join(pieces), tokenizer)
    except Exception as exc:  # one bad request must not end a benchmark; Ctrl-C still does
        return error_row(model, start, exc, "".join(pieces))


def error_row(model: str, start: float, exc: BaseException, text: str = "") -> dict:
    """The row of a request that failed: its reason, and how long it took to fail."""
    return {"model": model, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:300],
            "e2e_s": time.perf_counter() - start, "text": text}


def timing_row(model, start, arrivals, end, usage, timings, text, tokenizer) -> dict:
    """The metrics of one streamed request from its clock readings (formulas in the module docstring).

    ``arrivals`` are the times text chunks arrived; ``usage`` has ``completion_tokens`` and
    ``prompt_tokens`` or is None; ``timings`` is llama-server's own timings object or None."""
    if usage is not None:
        completion, source = usage.completion_tokens, "usage"
    elif tokenizer is not None:
        completion, source = tokenizer(text), "tokenizer"
    else:
        completion, source = len(arrivals), "chunks"
    timings = timings or {}
    ttft = arrivals[0] - start if arrivals else None
    tpot = (end - arrivals[0]) / (completion - 1) if arrivals and completion > 1 else None
    return {
        "model": model, "status": "ok", "error": "", "ttft_s": ttft, "e2e_s": end - start,
        "tpot_s": tpot, "decode_tps": 1 / tpot if tpot else None, "completion_tokens": completion,
        "prompt_tokens": usage.prompt_tokens if usage else None, "token_source": source,
        "tokens_estimated": source != "usage", "itl_s": [b - a for a, b in zip(arrivals, arrivals[1:])],
        "chunks": len(arrivals), "server_decode_tps": timings.get("predicted_per_second"),
        "server_prefill_tps": timings.get("prompt_per_second"),
        "server_prompt_computed": timings.get("prompt_n"), "server_prompt_cached": timings.get("cache_n"),
        "text": text,
    }


def llama_server_tokenizer(base_url: str, model: str, api_key=None):
    """A token counter that asks llama-server's ``/tokenize`` (the fallback when usage is missing)."""
    root = base_url.removesuffix("/v1")

    def count(text: str) -> int:
        return len(server.post_json(f"{root}/tokenize", {"model": model, "content": text}, api_key)["tokens"])
    return count


@dataclass
class RequestPlan:
    """How a benchmark sends and counts its requests, decided once per run from what the server can do.

    ``cache`` is "server-off" (the server is asked not to reuse cached prompts), "unique" (each prompt
    starts with a unique tag, so no cached prefix matches), or "allowed" (cache hits on purpose)."""
    cache: str = "unique"
    extra_body: dict = None
    tokenizers: dict = field(default_factory=dict)  # model -> counter, only where usage is missing
    counter: itertools.count = field(default_factory=itertools.count)

    def request(self, messages: list) -> list:
        """The messages to send for one request under this plan."""
        return unique_messages(messages, next(self.counter)) if self.cache == "unique" else messages

    def options(self, model: str) -> dict:
        """Keyword arguments for ``stream_once``."""
        return {"extra_body": self.extra_body, "tokenizer": self.tokenizers.get(model)}


def unique_messages(messages: list, n: int) -> list:
    """A copy whose first message starts with a unique tag: prefix caches match from the first token
    on, so this one differs from every earlier prompt (it adds about ten tokens to the prompt). What a
    chat template puts before the first message (Qwen's default system prompt when there is no system
    message) is still shared, so benchmark prompts start with a system message."""
    first = dict(messages[0], content=f"[{uuid.uuid4().hex[:8]} #{n}] {messages[0]['content']}")
    return [first, *messages[1:]]


def plan_requests(target, model_ids, allow_cache: bool = False, verbose: bool = True) -> RequestPlan:
    """Decide, once, how requests to ``target`` (a ``Connection``, or a bare OpenAI client) keep TTFT a
    prefill and count tokens. Prints one sentence for each thing the server cannot do."""
    say = print if verbose else (lambda *_: None)
    if not hasattr(target, "supports"):  # a bare client: we know nothing about the server
        say("Unknown server: each prompt gets a unique first token so no cached prefix is reused, and tokens "
            "are taken from usage, or counted as stream chunks (token_source='chunks') where it sends none.")
        return RequestPlan("allowed" if allow_cache else "unique")
    if allow_cache:
        plan = RequestPlan("allowed")
    elif target.supports("prompt_cache_control", "switching prompt caching off per request"):
        plan = RequestPlan("server-off", {"cache_prompt": False})
    else:
        say("Instead, each prompt starts with a unique tag, so no request reuses an earlier one's cache.")
        plan = RequestPlan("unique")
    if not target.supports("streamed_usage", "reading token counts from the stream"):
        for model in model_ids:
            if counter := target.token_counter(model):
                plan.tokenizers[model] = counter
        missing = [m for m in model_ids if m not in plan.tokenizers]
        say("Tokens are counted with each model's tokenizer instead (token_source='tokenizer')." if not missing
            else f"No tokenizer reachable for {', '.join(missing)}: its tokens are counted as stream chunks "
                 "(token_source='chunks'), which can differ from real tokens.")
    return plan


def client_of(target):
    """The OpenAI client of a ``Connection``, or the client itself."""
    return getattr(target, "client", target)


def run_prompts(target, models: dict, prompts: list, max_tokens: int = 128, rounds: int = 1,
                warmup: int = 1, plan: RequestPlan = None) -> pd.DataFrame:
    """Each prompt ``rounds`` times on each ``{label: model_id}``, one request at a time, after
    ``warmup`` untimed requests per model (the first request also pays for loading the model).

    ``target`` is a ``Connection`` (``wl.connect()``) or an OpenAI client; ``plan`` defaults to
    ``plan_requests(target, ...)``: no cache hits, tokens counted the best way the server allows."""
    plan = plan or plan_requests(target, list(models.values()))
    client, rows = client_of(target), []
    for label, model in models.items():
        for _ in range(warmup):
            stream_once(client, model, plan.request(prompts[0]), max_tokens=8, **plan.options(model))
        jobs = [(r, i) for r in range(rounds) for i in range(len(prompts))]
        for r, i in tqdm(jobs, desc=label):
            row = stream_once(client, model, plan.request(prompts[i]), max_tokens=max_tokens, **plan.options(model))
            rows.append({"phase": "rounds", "role": label, "prompt": i, "round": r, "concurrency": 1,
                         "cache": plan.cache, **row})
    return pd.DataFrame(rows)


def run_concurrent(target, model: str, prompts: list, concurrency: int, requests: int,
                   max_tokens: int = 128, plan: RequestPlan = None) -> tuple:
    """``requests`` streamed requests, ``concurrency`` of them in flight at once.

    Returns ``(rows, wall_s)``; each row has ``t_start_s``, its start relative to the first request.
    A request that fails in any way becomes a row with its reason; the others are kept."""
    plan = plan or plan_requests(target, [model], verbose=False)
    client, interrupted = client_of(target), threading.Event()

    def stop_if_interrupted(_piece):
        if interrupted.is_set():
            raise InterruptedError("the sweep was interrupted")

    def one(i):
        t0 = time.perf_counter()
        try:
            row = stream_once(client, model, plan.request(prompts[i % len(prompts)]), max_tokens,
                              on_text=stop_if_interrupted, **plan.options(model))
        except Exception as exc:  # stream_once catches its own errors; this guards anything around it
            row = error_row(model, t0, exc)
        return {"prompt": i % len(prompts), "t_start_s": t0 - start, **row}

    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        try:
            rows = list(pool.map(one, range(requests)))
        except BaseException:  # Ctrl-C: queued requests never start, those in flight stop (and close) now
            interrupted.set()
            pool.shutdown(cancel_futures=True)
            raise
    return rows, time.perf_counter() - start


def steady_window(rows: list, concurrency: int):
    """``(t_from, t_to)``: the stretch of a sweep level during which all ``concurrency`` streams were
    producing tokens, from the moment the last of the first wave got its first token to the first moment
    a slot fell idle for good (the end of the (n - concurrency + 1)-th request to finish). None if empty."""
    ok = [r for r in rows if r["status"] == "ok" and r["ttft_s"] is not None]
    if len(ok) < concurrency:
        return None
    firsts = sorted(r["t_start_s"] + r["ttft_s"] for r in ok)
    ends = sorted(r["t_start_s"] + r["e2e_s"] for r in ok)
    t_from, t_to = firsts[concurrency - 1], ends[len(ok) - concurrency]
    return (t_from, t_to) if t_to > t_from else None


def tokens_in_window(rows: list, window) -> float:
    """Output tokens produced inside ``window``: each request's chunk arrivals, scaled to its token count."""
    total = 0.0
    for r in rows:
        if r["status"] != "ok" or not r["chunks"]:
            continue
        first = r["t_start_s"] + r["ttft_s"]
        arrivals = list(itertools.accumulate(r["itl_s"], initial=first))
        inside = sum(window[0] <= t <= window[1] for t in arrivals)
        total += inside * r["completion_tokens"] / r["chunks"]
    return total


def level_summary(label: str, model: str, level: int, rows: list, wall: float) -> dict:
    """One sweep level: throughput over the whole wall time and over the steady-state window."""
    ok = [r for r in rows if r["status"] == "ok"]
    window = steady_window(rows, level)
    steady = tokens_in_window(rows, window) / (window[1] - window[0]) if window else None
    per_stream = pd.Series([r["decode_tps"] for r in ok], dtype=float).median()
    return {"role": label, "model": model, "concurrency": level, "requests": len(rows),
            "failed": len(rows) - len(ok), "output_tokens": sum(r["completion_tokens"] for r in ok),
            "wall_s": wall, "aggregate_tps": sum(r["completion_tokens"] for r in ok) / wall,
            "steady_window_s": window[1] - window[0] if window else None, "steady_tps": steady,
            "per_stream_tps": per_stream}


def sweep(target, models: dict, prompts: list, levels=(1, 2, 4, 8), requests_per_slot: int = 2,
          max_tokens: int = 128, plan: RequestPlan = None) -> tuple:
    """Throughput against concurrency for each ``{label: model_id}``.

    Returns ``(rows, levels_df)``: every request (phase "sweep"), and one line per model and level with
    the aggregate output tokens/s over the wall time and over the steady window (``level_summary``).
    Failed requests stay in ``rows`` with their reason, and the levels count them."""
    plan = plan or plan_requests(target, list(models.values()))
    rows, levels_out = [], []
    jobs = [(label, model, level) for label, model in models.items() for level in levels]
    for label, model, level in tqdm(jobs, desc="concurrency sweep"):
        if level == levels[0]:  # untimed: a server that swaps models loads this one now, not during a level
            stream_once(client_of(target), model, plan.request(prompts[0]), max_tokens=4, **plan.options(model))
        level_rows, wall = run_concurrent(target, model, prompts, level, level * requests_per_slot,
                                          max_tokens, plan)
        rows += [{"phase": "sweep", "role": label, "concurrency": level, "cache": plan.cache, **r}
                 for r in level_rows]
        levels_out.append(level_summary(label, model, level, level_rows, wall))
    return pd.DataFrame(rows), pd.DataFrame(levels_out)


# The sweep's request: its answer always runs to max_tokens, so every level does the same work per request
SWEEP_PROMPT = [{"role": "system", "content": "You are a patient assistant."},
                {"role": "user", "content": "Count from 1 to 300, separated by spaces."}]


def benchmark(target, models: dict, prompts: list, rounds: int = 3, warmup: int = 1,
              max_tokens: int = 64, levels=(1, 2, 4, 8), requests_per_slot: int = 2,
              sweep_prompts=(SWEEP_PROMPT,)) -> dict:
    """The whole lab-03 run: sequential rounds over ``prompts``, then the concurrency sweep over
    ``sweep_prompts`` (by default one prompt whose answer fills ``max_tokens``, so levels compare equal
    work), then server memory.

    Returns DataFrames ``requests`` (every request; ``phase`` tells rounds from sweep), ``sweep`` (one
    line per model and concurrency level) and ``memory`` (RSS of each model's server process, where
    the server runs on this machine and we can see it)."""
    plan = plan_requests(target, list(models.values()))
    sequential = run_prompts(target, models, prompts, max_tokens, rounds, warmup, plan)
    concurrent, levels_df = sweep(target, models, list(sweep_prompts), levels, requests_per_slot, max_tokens, plan)
    local = getattr(target, "supports", None) and target.supports("process_memory", "reading the server's memory")
    memory = pd.DataFrame([{"role": label, "model": model,
                            "server_rss_mb": server.model_rss_mb(model) if local else None}
                           for label, model in models.items()])
    requests = pd.concat([sequential, concurrent], ignore_index=True)
    return {"requests": requests, "sweep": levels_df, "memory": memory}


COUNTING_PROMPT = [{"role": "user", "content": "Count from 1 to 300, separated by spaces."}]  # for decode only


def shares_model_file(lab, model: str) -> bool:
    """llama-bench reads the model file itself, so it runs only beside the embedded server, on a course
    model (the same file and threads the server uses)."""
    return lab.backend == "embedded" and model in models.load_registry()


def harness_overhead(lab, role: str = "slm", n_gen: int = 64, rounds: int = 3) -> dict:
    """Decode tokens/s three ways for the same model and threads: this HTTP harness, the server's own
    ``timings``, and ``llama-bench`` (no HTTP at all). Ratios near 1 mean client numbers are trusted.

    Only the parts the server allows are run: without ``timings`` there is no server figure, and
    llama-bench runs only next to the embedded server (same model file, same threads).
    The harness and llama-bench take turns, round by round, so that a machine that speeds up or
    slows down during the check (laptops and shared hosts do) affects both alike."""
    model = lab.models[role]
    local = shares_model_file(lab, model)
    has_timings = lab.supports("timings", "comparing with the server's own decode speed")
    plan = plan_requests(lab, [model], verbose=False)
    stream_once(lab.client, model, COUNTING_PROMPT, max_tokens=8, **plan.options(model))  # load the model first
    rows, bench_tps = [], []
    for _ in tqdm(range(rounds), desc="harness vs llama-bench" if local else "harness"):
        rows.append(stream_once(lab.client, model, plan.request(COUNTING_PROMPT), max_tokens=n_gen,
                                **plan.options(model)))
        if local:
            bench_tps.append(llamacpp.llama_bench(models.get_spec(model).path, server.threads(), n_prompt=0,
                                                  n_gen=n_gen, repetitions=1)["tg_tps"])
    rows = pd.DataFrame(rows)
    result = {"model": model, "rounds": rounds, "harness_tps": rows["decode_tps"].median()}
    if has_timings:
        result["server_tps"] = rows["server_decode_tps"].median()
        result["harness/server"] = result["harness_tps"] / result["server_tps"]
    if local:
        result["llama_bench_tps"] = float(pd.Series(bench_tps).median())
        result["harness/llama-bench"] = result["harness_tps"] / result["llama_bench_tps"]
    return result


def client_interference(lab, role: str = "slm", n_gen: int = 64, rounds: int = 3) -> dict:
    """Does this Python process, reading the stream, slow the server down? On a machine whose cores
    the server's threads fill, every chunk the client parses takes CPU time from them.

    Requests take turns: one streamed (this process wakes for every chunk) and one not streamed (this
    process sleeps until the reply), and each is timed by the server itself (``timings``). The ratio
    ``streamed/quiet`` is the median of the pairs' ratios; near 1 the client costs the server nothing.
    Returns {} on a server without ``timings``."""
    if not lab.supports("timings", "measuring whether this client slows the server down"):
        return {}
    model = lab.models[role]
    plan = plan_requests(lab, [model], verbose=False)
    stream_once(lab.client, model, COUNTING_PROMPT, max_tokens=8, **plan.options(model))  # load the model first
    pairs = []
    for _ in tqdm(range(rounds), desc="streamed vs quiet client"):
        streamed = stream_once(lab.client, model, plan.request(COUNTING_PROMPT), max_tokens=n_gen,
                               **plan.options(model))["server_decode_tps"]
        pairs.append((streamed, quiet_decode_tps(lab.client, model, plan, n_gen)))
    pairs = pd.DataFrame(pairs, columns=["streamed", "quiet"]).dropna()
    ratios = pairs["streamed"] / pairs["quiet"]
    return {"model": model, "pairs": len(pairs), "server_tps_streamed": pairs["streamed"].median(),
            "server_tps_quiet": pairs["quiet"].median(), "streamed/quiet": ratios.median(),
            "ratio_low": ratios.min(), "ratio_high": ratios.max(), "verdict": interference_verdict(ratios)}


def interference_verdict(ratios, tolerance: float = 0.1, min_pairs: int = 3) -> str:
    """What the pairs' ``streamed/quiet`` ratios can tell. On a busy machine one pair's ratio ranges from
    0.3 to 4.7, so a verdict needs several pairs that all fall on the same side: "slows the server" when
    every pair is below 1 - ``tolerance``, "no measurable cost" when all are within 1 +- ``tolerance``, and
    "inconclusive" otherwise (the machine's own noise is larger than the effect)."""
    ratios = pd.Series(ratios, dtype=float).dropna()
    spread = f"{len(ratios)} pairs, ratios {ratios.min():.2f} to {ratios.max():.2f}" if len(ratios) else "no pairs"
    if len(ratios) < min_pairs:
        return f"inconclusive: {spread}; at least {min_pairs} pairs are needed"
    if ratios.max() < 1 - tolerance:
        return f"the streaming client slows the server: {spread}, all below {1 - tolerance:.2f}"
    if ratios.between(1 - tolerance, 1 + tolerance).all():
        return f"no measurable cost: {spread}, all within {tolerance:.0%} of 1"
    return f"inconclusive: {spread}; the noise is larger than any effect"


def quiet_decode_tps(client, model: str, plan: RequestPlan, n_gen: int):
    """The server's own decode speed for one non-streamed request (this process idle meanwhile)."""
    reply = client.chat.completions.create(model=model, messages=plan.request(COUNTING_PROMPT), max_tokens=n_gen,
                                           temperature=0, extra_body=plan.extra_body)
    return ((reply.model_extra or {}).get("timings") or {}).get("predicted_per_second")


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
    parser.add_argument("--open-loop", type=float, nargs="+", metavar="RATE",
                        help="instead: open-loop runs at these request rates (per second), first role only")
    parser.add_argument("--pattern", choices=["poisson", "constant"], default="poisson", help="open-loop arrivals")
    parser.add_argument("--requests", type=int, default=8, help="open-loop requests per rate")
    parser.add_argument("--goodput", nargs="+", default=["ttft:1000", "tpot:100"], metavar="KEY:MS",
                        help="latency targets in ms, as vllm bench serve takes them (ttft, tpot, e2el)")
    parser.add_argument("--prompt-lengths", type=int, nargs="+", metavar="WORDS",
                        help="instead: TTFT and decode speed against prompt length, prompt cache off")
    args = parser.parse_args(argv)
    lab = connect()
    if args.overhead:
        for role in args.roles:
            print(json.dumps(harness_overhead(lab, role, args.max_tokens, args.rounds), indent=1))
        return 0
    if args.open_loop or args.prompt_lengths:
        return run_extra(lab, args)
    chosen = {r: lab.models.get(r, r) for r in args.roles}
    result = benchmark(lab, chosen, load_prompts(args.prompts), args.rounds, args.warmup,
                       args.max_tokens, tuple(args.concurrency))
    config = {**vars(args), "backend": lab.backend, "models": chosen}
    files = report.export(args.out, config, **result)
    print(files["report"].read_text())
    return 0


def parse_goodput(items) -> dict:
    """``["ttft:1000", "tpot:100"]`` (or ``"ttft:1000,tpot:100"``), in ms as vllm takes them -> seconds."""
    targets = {}
    for item in ",".join(items).split(","):
        key, sep, value = item.partition(":")
        try:
            targets[key.strip()] = float(value) / 1000
        except ValueError:
            raise WorkshopError(f"Cannot read the goodput target {item!r}.", "Write KEY:MS, e.g. ttft:1000 tpot:100.") from None
        if not sep:
            raise WorkshopError(f"Cannot read the goodput target {item!r}.", "Write KEY:MS, e.g. ttft:1000 tpot:100.")
    return targets


def run_extra(lab, args) -> int:
    """The CLI's open-loop rate sweep or prompt-length sweep, exported like the main benchmark."""
    from . import load, prefill  # they import this module

    model = lab.models.get(args.roles[0], args.roles[0])
    config = {**vars(args), "backend": lab.backend, "model": model}
    if args.open_loop:
        targets = parse_goodput(args.goodput)
        rows, levels = load.rate_sweep(lab, model, [SWEEP_PROMPT], args.open_loop, args.requests, args.pattern,
                                       args.max_tokens, targets)
        levels["knee"] = levels["offered_rps"] == load.find_knee(levels)
        tables = {"open_loop": levels}
    else:
        rows = prefill.length_sweep(lab, model, args.prompt_lengths, args.rounds, args.max_tokens)
        table = prefill.with_bench_depths(lab, model, prefill.summarize_lengths(rows), args.max_tokens)
        tables = {"prefill": table, "linearity": pd.DataFrame([prefill.linear_until(table)])}
    files = report.export(args.out, config, rows, **tables)
    print(files["report"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
