"""Open-loop load: requests that arrive at a set rate, whether or not the server keeps up (taught in 03).

A closed loop (``bench.sweep``) sends the next request only when one finishes, so a slow server slows its
own load down and queues never grow: it hides what users see when they arrive on their own schedule. Here
requests start at times drawn in advance: ``constant`` (one every 1/rate seconds) or ``poisson`` (gaps
drawn from an exponential distribution with mean 1/rate, as independent users arrive). Past the rate the
server can serve, requests wait for a slot and TTFT climbs: the *knee* of the rate sweep.

**Goodput** is defined as ``vllm bench serve --goodput`` does: the successful requests that meet every
latency target (TTFT, TPOT, e2e; a target is met when the value is at most the target; TPOT counts as 0
for a one-token answer), divided by the benchmark's duration (first request sent to last one finished).
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import WorkshopError
from . import bench

PATTERNS = ("poisson", "constant")
SLO_KEYS = {"ttft": "ttft_s", "tpot": "tpot_s", "e2el": "e2e_s"}  # vllm's names -> our columns


def arrival_times(rate: float, requests: int, pattern: str = "poisson", seed: int = 0) -> list:
    """Start times in seconds (the first at 0) of ``requests`` requests arriving at ``rate`` per second."""
    if not rate > 0 or requests < 1:
        raise WorkshopError(f"An open-loop run needs a rate above 0 and at least one request (got rate={rate}, "
                            f"requests={requests}).", "Pass e.g. rate=1.0, requests=8.")
    if pattern == "constant":
        return [i / rate for i in range(requests)]
    if pattern == "poisson":
        gaps = np.random.default_rng(seed).exponential(1 / rate, requests - 1)
        return [0.0, *np.cumsum(gaps).tolist()]
    raise WorkshopError(f"Unknown arrival pattern {pattern!r}.", f"Use one of {', '.join(PATTERNS)}.")


def run_open_loop(target, model: str, prompts: list, rate: float, requests: int, pattern: str = "poisson",
                  max_tokens: int = 32, plan=None, seed: int = 0) -> tuple:
    """Send ``requests`` streamed requests at the times ``arrival_times`` gives; return ``(rows, duration_s)``.

    Every request has its own thread, so a slow answer never delays the next arrival (``late_s`` records
    any lag of the start behind its schedule). Ctrl-C stops the requests in flight and those not started."""
    plan = plan or bench.plan_requests(target, [model], verbose=False)
    schedule, client, stop = arrival_times(rate, requests, pattern, seed), bench.client_of(target), threading.Event()

    def stop_if_interrupted(_piece):
        if stop.is_set():
            raise InterruptedError("the open-loop run was interrupted")

    def one(i):
        if stop.wait(max(0.0, start + schedule[i] - time.perf_counter())):
            return None  # interrupted before its turn
        sent = time.perf_counter() - start
        row = bench.stream_once(client, model, plan.request(prompts[i % len(prompts)]), max_tokens,
                                on_text=stop_if_interrupted, **plan.options(model))
        return {"prompt": i % len(prompts), "scheduled_s": schedule[i], "t_start_s": sent,
                "late_s": sent - schedule[i], **row}

    with ThreadPoolExecutor(requests) as pool:
        start = time.perf_counter()
        try:
            rows = list(pool.map(one, range(requests)))
        except BaseException:
            stop.set()
            pool.shutdown(cancel_futures=True)
            raise
    return rows, time.perf_counter() - start


def goodput(rows: list, duration_s: float, **targets) -> dict:
    """Requests per second meeting every target, as ``vllm bench serve --goodput`` counts them.

    ``targets`` in seconds, named as vllm names them: ``ttft``, ``tpot``, ``e2el`` (e.g. ``ttft=1.0,
    tpot=0.1``). Returns the goodput, the request throughput and the share of requests that were good."""
    unknown = set(targets) - set(SLO_KEYS)
    if unknown:
        raise WorkshopError(f"Unknown latency target(s) {sorted(unknown)}.", "Use ttft, tpot and/or e2el, in seconds.")
    ok = [r for r in rows if r and r["status"] == "ok"]
    good = sum(all(_value(r, key) <= limit for key, limit in targets.items()) for r in ok)
    return {"completed": len(ok), "good": good, "request_rps": len(ok) / duration_s,
            "goodput_rps": good / duration_s, "good_share": good / len(rows) if rows else None}


def _value(row: dict, key: str) -> float:
    value = row[SLO_KEYS[key]]
    return 0.0 if key == "tpot" and value is None else value  # vllm: one output token -> TPOT 0


def rate_sweep(target, model: str, prompts: list, rates, requests_per_rate: int = 8, pattern: str = "poisson",
               max_tokens: int = 32, targets: dict = None, plan=None, seed: int = 0) -> tuple:
    """An open-loop run at each offered rate; returns ``(requests, levels)`` DataFrames.

    ``levels`` has one line per rate: what was offered and served, median and p90 TTFT, median TPOT,
    output tokens/s and the goodput for ``targets`` (default TTFT <= 1 s and TPOT <= 0.1 s)."""
    targets = targets or {"ttft": 1.0, "tpot": 0.1}
    plan = plan or bench.plan_requests(target, [model], verbose=False)
    bench.stream_once(bench.client_of(target), model, plan.request(prompts[0]), max_tokens=4, **plan.options(model))
    rows, levels = [], []
    for rate in tqdm(list(rates), desc=f"open loop ({pattern})"):
        level_rows, duration = run_open_loop(target, model, prompts, rate, requests_per_rate, pattern,
                                             max_tokens, plan, seed)
        rows += [{"phase": "open-loop", "pattern": pattern, "offered_rps": rate, **r} for r in level_rows if r]
        levels.append(level_line(rate, pattern, level_rows, duration, targets))
    return pd.DataFrame(rows), pd.DataFrame(levels)


def level_line(rate: float, pattern: str, rows: list, duration: float, targets: dict) -> dict:
    """One rate of the sweep, summarized."""
    ok = pd.DataFrame([r for r in rows if r and r["status"] == "ok"])
    pick = lambda column, q: ok[column].dropna().quantile(q) if len(ok) else None  # noqa: E731
    tokens = ok["completion_tokens"].sum() if len(ok) else 0
    return {"pattern": pattern, "offered_rps": rate, "requests": len(rows), "failed": len(rows) - len(ok),
            "duration_s": duration, "ttft_p50_s": pick("ttft_s", 0.5), "ttft_p90_s": pick("ttft_s", 0.9),
            "tpot_p50_s": pick("tpot_s", 0.5), "output_tps": tokens / duration,
            "max_late_s": max((r["late_s"] for r in rows if r), default=0.0),
            **goodput(rows, duration, **targets)}


def find_knee(levels: pd.DataFrame, factor: float = 2.0):
    """The lowest offered rate whose median TTFT is more than ``factor`` times that of the lowest rate:
    from there on requests queue for a slot instead of starting at once. None if no rate got there."""
    ordered = levels.dropna(subset=["ttft_p50_s"]).sort_values("offered_rps")
    if len(ordered) < 2:
        return None
    base = ordered["ttft_p50_s"].iloc[0]
    over = ordered[ordered["ttft_p50_s"] > factor * base]
    return float(over["offered_rps"].iloc[0]) if len(over) else None


def rates_around(capacity_rps: float, multiples=(0.25, 0.5, 1.0, 1.5, 2.5)) -> list:
    """Offered rates as multiples of an estimated capacity (e.g. closed-loop tokens/s / max_tokens), so the
    sweep crosses saturation on a slow laptop and on a fast one alike."""
    return [round(capacity_rps * m, 3) for m in multiples]
