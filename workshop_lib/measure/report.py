"""Summaries and exports of benchmark results (taught in 03_benchmarking).

A run is saved as ``results.json`` (config, every request, the summary, the sweep) plus CSV copies
and a Markdown report; ``load_results`` reads the JSON back into the same DataFrames.
"""
import json
from pathlib import Path

import pandas as pd

from ..config import write_atomic

METRICS = ("ttft_s", "e2e_s", "tpot_s", "decode_tps", "completion_tokens", "prompt_tokens")
PERCENTILES = (50, 90, 95, 99)
KNOWN_TABLES = ("requests", "summary", "sweep", "memory")
EXTRA_TITLES = {"open_loop": "Open-loop load: offered rate, latency and goodput",
                "prefill": "TTFT and decode speed against prompt length (prompt cache off)",
                "linearity": "Where TTFT stops growing linearly with the prompt",
                "speculative": "Speculative decoding and an 8-bit KV cache: speedup over the model alone",
                "speculative_memory": "Speculative decoding's servers: KV cache logged and by the formula"}


def summarize(requests: pd.DataFrame, by=("role", "model")) -> pd.DataFrame:
    """Per group and metric: n, mean, std and the p50/p90/p95/p99 of the successful requests.

    ``tail_unreliable`` names the percentiles computed from too few requests to mean anything
    (``tail_unreliable_below``): with 10 requests "p99" is just the slowest one."""
    ok = requests[requests["status"] == "ok"]
    by = [b for b in by if b in ok]
    rows = []
    for keys, group in ok.groupby(by, dropna=False) if by else [((), ok)]:
        keys = keys if isinstance(keys, tuple) else (keys,)
        for metric in METRICS:
            values = pd.to_numeric(group[metric], errors="coerce").dropna() if metric in group else pd.Series()
            if values.empty:
                continue
            stats = {f"p{p}": values.quantile(p / 100) for p in PERCENTILES}
            rows.append({**dict(zip(by, keys)), "metric": metric, "n": len(values),
                         "mean": values.mean(), "std": values.std(ddof=1), **stats,
                         "tail_unreliable": tail_unreliable(len(values))})
    columns = [*by, "metric", "n", "mean", "std", *(f"p{p}" for p in PERCENTILES), "tail_unreliable"]
    return pd.DataFrame(rows, columns=columns)  # columns even when every request failed


def tail_unreliable_below(p: float) -> int:
    """Requests needed before the p-th percentile differs from the maximum: at least 100 / (100 - p),
    times 2 so that at least two requests lie above it (10 -> p90 needs 20, p99 needs 200)."""
    return int(round(2 * 100 / (100 - p)))


def tail_unreliable(n: int) -> str:
    """The percentiles (of ``PERCENTILES``) that ``n`` requests cannot support, e.g. "p95,p99"."""
    return ",".join(f"p{p}" for p in PERCENTILES if p > 50 and n < tail_unreliable_below(p))


def inter_token_gaps(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per gap between successive chunks, for ITL distributions."""
    ok = requests[requests["status"] == "ok"][["role", "model", "itl_s"]]
    return ok.explode("itl_s").dropna(subset=["itl_s"]).astype({"itl_s": float})


def export(out_dir, config: dict, requests: pd.DataFrame, **tables) -> dict:
    """Write results.json (everything), one CSV per table (``requests``, ``summary`` and the extra
    ``tables`` such as ``sweep``), and report.md; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by = [c for c in ("phase", "role", "model", "concurrency") if c in requests]  # rounds apart from sweep
    tables = {"requests": requests, "summary": summarize(requests, by), **tables}
    files = {"json": out / "results.json", "report": out / "report.md"}
    write_atomic(files["json"], json.dumps({"config": config, **{k: _records(v) for k, v in tables.items()}},
                                           indent=1, default=str))
    for name, table in tables.items():
        files[name] = out / f"{name}.csv"
        write_atomic(files[name], table.to_csv(index=False))
    write_atomic(files["report"], markdown_report(config, tables))
    return files


def load_results(path) -> dict:
    """Read a results.json (or its folder) back: ``config`` plus one DataFrame per table."""
    path = Path(path)
    data = json.loads((path / "results.json" if path.is_dir() else path).read_text())
    return {k: (v if k == "config" else pd.DataFrame(v)) for k, v in data.items()}


def markdown_report(config: dict, tables: dict) -> str:
    requests, summary = tables["requests"], tables["summary"]
    levels, memory = tables.get("sweep", pd.DataFrame()), tables.get("memory", pd.DataFrame())
    failed = requests[requests["status"] != "ok"]
    parts = ["# Benchmark report", "", "Settings: " + ", ".join(f"{k}={v}" for k, v in config.items()), ""]
    table = summary[summary["metric"].isin(["ttft_s", "tpot_s", "decode_tps"])]
    for phase, title in (("rounds", "one request at a time"), ("sweep", "during the concurrency sweep")):
        part = table[table["phase"] == phase] if "phase" in table else (table if phase == "rounds" else table[:0])
        if not part.empty:
            parts += [f"## Per-request metrics, {title} (successful requests)", "", markdown_table(part), ""]
    if summary.get("tail_unreliable", pd.Series(dtype=str)).astype(bool).any():
        parts += ["Percentiles listed under `tail_unreliable` come from too few requests: read them as "
                  "\"the slowest request seen\", not as a tail estimate.", ""]
    if not levels.empty:
        parts += ["## Throughput against concurrency", "",
                  "`aggregate_tps` = output tokens / whole wall time (ramp-up and ramp-down included); "
                  "`steady_tps` = output tokens / time while every stream was generating.", "",
                  markdown_table(levels), ""]
    if not memory.empty:
        parts += ["## Server memory", "", markdown_table(memory), ""]
    for name, extra in tables.items():  # open-loop, prefill and other tables a run adds
        if name not in KNOWN_TABLES and not extra.empty:
            parts += [f"## {EXTRA_TITLES.get(name, name)}", "", markdown_table(extra), ""]
    parts += [f"## Failures: {len(failed)}", ""]
    if len(failed):
        parts += [markdown_table(failed[[c for c in ("phase", "model", "concurrency", "error") if c in failed]]), ""]
    return "\n".join(parts)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table, numbers rounded for reading."""
    cells = df.apply(lambda col: col.map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)))
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.astype(str).values.tolist()]
    return "\n".join(lines)


def _records(df: pd.DataFrame) -> list:
    return json.loads(df.to_json(orient="records")) if not df.empty else []

