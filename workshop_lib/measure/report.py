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


def summarize(requests: pd.DataFrame, by=("role", "model")) -> pd.DataFrame:
    """Per group and metric: n, mean, std and the p50/p90/p95/p99 of the successful requests."""
    ok = requests[requests["status"] == "ok"]
    rows = []
    for keys, group in ok.groupby(list(by)):
        for metric in METRICS:
            values = pd.to_numeric(group[metric], errors="coerce").dropna()
            if values.empty:
                continue
            stats = {f"p{p}": values.quantile(p / 100) for p in PERCENTILES}
            rows.append({**dict(zip(by, keys)), "metric": metric, "n": len(values),
                         "mean": values.mean(), "std": values.std(ddof=1), **stats})
    columns = [*by, "metric", "n", "mean", "std", *(f"p{p}" for p in PERCENTILES)]
    return pd.DataFrame(rows, columns=columns)  # columns even when every request failed


def inter_token_gaps(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per gap between successive chunks, for ITL distributions."""
    ok = requests[requests["status"] == "ok"][["role", "model", "itl_s"]]
    return ok.explode("itl_s").dropna().astype({"itl_s": float})


def export(out_dir, config: dict, requests: pd.DataFrame, **tables) -> dict:
    """Write results.json (everything), one CSV per table (``requests``, ``summary`` and the extra
    ``tables`` such as ``sweep``), and report.md; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by = ("role", "model", "concurrency") if "concurrency" in requests else ("role", "model")
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
    parts += ["## Per-request metrics (successful requests)", "", markdown_table(table), ""]
    if not levels.empty:
        parts += ["## Throughput against concurrency", "", markdown_table(levels), ""]
    if not memory.empty:
        parts += ["## Server memory", "", markdown_table(memory), ""]
    parts += [f"## Failures: {len(failed)}", ""]
    if len(failed):
        parts += [markdown_table(failed[[c for c in ("model", "concurrency", "error") if c in failed]]), ""]
    return "\n".join(parts)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table, numbers rounded for reading."""
    cells = df.apply(lambda col: col.map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)))
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.astype(str).values.tolist()]
    return "\n".join(lines)


def _records(df: pd.DataFrame) -> list:
    return json.loads(df.to_json(orient="records")) if not df.empty else []

