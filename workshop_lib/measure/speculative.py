"""Speculative decoding and a quantized KV cache, each measured against the same model alone
(taught in 03_benchmarking).

Speculative decoding lets something cheap guess the next few tokens and the target model check all the
guesses in one batched pass: every accepted guess is a token written for a fraction of a pass. Two kinds:

* a **draft model**: a smaller model with the same vocabulary writes the guesses (``-md FILE --spec-type
  draft-simple`` on llama-server). On a CPU the draft's own passes are not free: it pays only when the
  draft is much cheaper than the target and most guesses are accepted;
* **n-gram lookup** (``--spec-type ngram-simple``): the guesses are copied from earlier text in the context
  that continues the last few tokens. Free to make, useful when the answer repeats its prompt (an edit).

At temperature 0 the target accepts only the tokens it would have written itself, so in exact arithmetic
the text is identical to the model alone; in floating point a batched check rounds differently and can
flip a near-tie, so ``summarize`` reports whether it stayed identical (``same_text``). Each variant runs
on a throwaway llama-server of its own (one slot, prompt cache off, 127.0.0.1), and the requests take
turns, round by round, so a machine that slows down during the run slows every variant alike. The same
harness measures ``-ctk/-ctv q8_0``.
"""
import contextlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from tqdm.auto import tqdm

from ..config import cache_dir, write_atomic
from ..errors import WorkshopError
from ..runtime import llamacpp, models, process, server
from . import kvcache, report

EDITED_MODULE = '''def load(path):
    with open(path) as handle:
        return [line.rstrip("\\n") for line in handle]


def count_words(lines):
    counts = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    return counts


def top(counts, n):
    return sorted(counts.items(), key=lambda item: item[1], reverse=True)[:n]


def report(path, n=10):
    for word, count in top(count_words(load(path)), n):
        print(f"{word}: {count}")
'''

SYSTEM = {"role": "system", "content": "You are a concise programming assistant."}
TASKS = {  # fresh code, prose, and an edit whose answer repeats its input
    "code": [SYSTEM, {"role": "user", "content": "Write a Python function that merges overlapping intervals, "
                                                 "with a docstring and three doctest examples. Code only."}],
    "prose": [SYSTEM, {"role": "user", "content": "In two paragraphs, explain to a new colleague why a "
                                                  "laptop's battery drains faster when its fan runs."}],
    "edit": [SYSTEM, {"role": "user", "content": "Add type hints to every function of this module and return "
                                                 f"the whole module, code only:\n\n{EDITED_MODULE}"}],
}


def variant_flags(draft_path=None) -> dict:
    """llama-server flags of each variant (the pinned build's spelling); the draft model only if given."""
    flags = {"alone": [], "n-gram": ["--spec-type", "ngram-simple"], "kv q8_0": ["-ctk", "q8_0", "-ctv", "q8_0"]}
    if draft_path:
        flags["draft model"] = ["-md", str(draft_path), "--spec-type", "draft-simple"]
    return flags


# At log verbosity 4 llama-server logs each model's shape and the KV cache it allocated (``memory`` reads
# it); measured on the 0.5B it costs no decode speed (28.0 vs 27.9 tokens/s). It also logs every rendered
# prompt, which is why only these throwaway servers, whose folder is deleted on close, run at it.
LOG_SHAPES = ["-lv", "4"]


def server_command(exe, model_path, alias: str, port: int, threads: int, flags: list, context: int = 4096) -> list:
    """One model, one slot, on 127.0.0.1 only, plus the variant's ``flags``."""
    return [str(exe), "-m", str(model_path), "-a", alias, "--host", server.HOST, "--port", str(port),
            "-t", str(threads), "-np", "1", "-c", str(context), *LOG_SHAPES, *flags]


class VariantServer:
    """A throwaway llama-server with extra flags, never the shared embedded one. ``with VariantServer(...)``
    starts it; leaving the block stops it and deletes its folder. Its record sits in the shared procs/
    folder under ``server.HELPER_PREFIX``, so ``python lab.py stop`` finds it after a kernel restart."""

    def __init__(self, alias: str, flags: list, label: str = "variant"):
        self.alias, self.flags, self.label = alias, list(flags), label
        self.name = f"{server.HELPER_PREFIX}spec-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.home = cache_dir() / "helpers" / self.name
        self.record = None

    def start(self, timeout: float = 180) -> "VariantServer":
        self.home.mkdir(parents=True, exist_ok=True)
        port = server.choose_port()
        command = server_command(llamacpp.binary(), models.ensure_model(self.alias, progress=False), self.alias,
                                 port, server.threads(), self.flags)
        self.record = process.start(self.name, command, port=port, health_url=f"http://{server.HOST}:{port}/health",
                                    log=self.home / "llama-server.log", env={**os.environ, "LLAMA_API_KEY": server.api_key()},
                                    ready_timeout=timeout, home=process.records_home())
        return self

    def ask(self, messages: list, max_tokens: int) -> dict:
        """One non-streamed request at temperature 0, prompt cache off: the text and the server's timings."""
        body = {"model": self.alias, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                "cache_prompt": False}
        reply = server.post_json(f"{self.record.url}/v1/chat/completions", body, server.api_key(), timeout=600)
        timings = reply.get("timings") or {}
        return {"text": reply["choices"][0]["message"]["content"], "tokens": timings.get("predicted_n"),
                "decode_tps": timings.get("predicted_per_second"), "draft_n": timings.get("draft_n", 0),
                "draft_n_accepted": timings.get("draft_n_accepted", 0)}

    def memory(self) -> dict:
        """The KV cache the server logged (MiB), what the formula gives for the shape and cells it logged
        (``kvcache.logged_caches``), and the process's resident memory (MB)."""
        text = (self.home / "llama-server.log").read_text(encoding="utf-8", errors="replace")
        caches = kvcache.logged_caches(text)  # the target's first; a draft model logs its own after it
        rss = None
        with contextlib.suppress(psutil.Error):
            rss = psutil.Process(self.record.pid).memory_info().rss / 1e6
        first = caches[0] if caches else {}
        return {"kv_type": first.get("k_type"), "kv_mib": first["logged_bytes"] / 2**20 if first else None,
                "formula_mib": first["formula_bytes"] / 2**20 if first else None, "kv_cells": first.get("cells"),
                "rss_mb": rss}

    def close(self) -> None:
        with contextlib.suppress(WorkshopError, OSError):
            process.stop(self.name, process.records_home())
        shutil.rmtree(self.home, ignore_errors=True)
        server.forget_helper(self.name)

    def __enter__(self) -> "VariantServer":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()


def interleaved_runs(servers: dict, tasks: dict, rounds: int = 2, max_tokens: int = 192) -> pd.DataFrame:
    """Every task on every variant ``rounds`` times, one request at a time, variants taking turns within
    each task and round (``turn_order``). One row per request; a failure keeps its reason and the run goes on."""
    jobs = [(r, task, variant) for r in range(rounds) for t, task in enumerate(tasks)
            for variant in turn_order(list(servers), r * len(tasks) + t)]
    rows = []
    for r, task, variant in tqdm(jobs, desc="speculative decoding"):
        row = {"round": r, "task": task, "variant": variant}
        try:
            row.update(servers[variant].ask(tasks[task], max_tokens), error="")
        except (OSError, KeyError, ValueError, WorkshopError) as exc:
            row.update(error=f"{type(exc).__name__}: {exc}"[:200])
        rows.append(row)
    return pd.DataFrame(rows)


def turn_order(variants: list, turn: int) -> list:
    """The variants rotated by ``turn``, so that no variant always runs first or always follows the same
    one. (Measured on 2 December, three rounds: with and without rotation, an n-gram server that drafted
    nothing read 1.06x the model alone; that spread is between servers, not the order.)"""
    shift = turn % len(variants) if variants else 0
    return variants[shift:] + variants[:shift]


def summarize(rows: pd.DataFrame, baseline: str = "alone") -> pd.DataFrame:
    """Per task and variant: median decode tokens/s, the speedup over ``baseline`` (median of the ratios
    paired by round, with the lowest and highest pair: a few rounds give a range, not a precise figure),
    the share of drafted tokens accepted, and whether every text equals the baseline's."""
    ok = rows[rows["error"] == ""]
    base = ok.loc[ok["variant"] == baseline, ["task", "round", "decode_tps", "text"]]
    lines = []
    for (task, variant), group in ok.groupby(["task", "variant"], sort=False):
        paired = group.merge(base, on=["task", "round"], suffixes=("", "_base"))
        ratios = paired["decode_tps"].astype(float) / paired["decode_tps_base"].astype(float)
        drafted = group["draft_n"].sum()
        lines.append({"task": task, "variant": variant, "n": len(group),
                      "decode_tps": group["decode_tps"].median(),
                      "speedup": float(np.median(ratios)) if len(paired) else None,
                      "speedup_low": float(ratios.min()) if len(paired) else None,
                      "speedup_high": float(ratios.max()) if len(paired) else None,
                      "drafted": int(drafted), "accepted": int(group["draft_n_accepted"].sum()),
                      "acceptance": group["draft_n_accepted"].sum() / drafted if drafted else None,
                      "same_text": bool((paired["text"] == paired["text_base"]).all()) if len(paired) else None})
    return pd.DataFrame(lines)


def measure(target_alias: str, draft_alias=None, tasks=None, rounds: int = 2, max_tokens: int = 192,
            variants=None) -> dict:
    """Start one throwaway server per variant (all at once, so requests can take turns), run the tasks,
    stop them all. ``variants`` picks names from ``variant_flags``. Returns rows, summary and memory."""
    draft = models.ensure_model(draft_alias, progress=False) if draft_alias else None
    flags = variant_flags(draft)
    chosen = {name: flags[name] for name in (variants or flags)}
    with contextlib.ExitStack() as stack:
        servers = {}
        for name in tqdm(chosen, desc="starting servers"):
            servers[name] = stack.enter_context(VariantServer(target_alias, chosen[name], name))
        rows = interleaved_runs(servers, tasks or TASKS, rounds, max_tokens)
        memory = pd.DataFrame([{"variant": name, **s.memory()} for name, s in servers.items()])
    return {"rows": rows, "summary": summarize(rows), "memory": memory}


def main(argv=None) -> int:
    """``python -m workshop_lib.measure.speculative``: the lesson's comparison from a terminal."""
    import argparse
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--target", default="qwen2.5-coder-1.5b")
    parser.add_argument("--draft", default="qwen2.5-coder-0.5b")
    parser.add_argument("--variants", nargs="+", default=None, help="alone, n-gram, 'draft model', 'kv q8_0'")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--out", default="results/speculative", help="folder for the CSVs and report.md")
    args = parser.parse_args(argv)
    result = measure(args.target, args.draft, rounds=args.rounds, max_tokens=args.max_tokens, variants=args.variants)
    print(export(args.out, result, vars(args)).read_text())
    return 0


def export(out_dir, result: dict, config: dict) -> Path:
    """rows.csv (one per request, texts included), summary.csv, memory.csv and report.md in ``out_dir``,
    as the benchmark exports its runs; returns the report's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("rows", "summary", "memory"):
        write_atomic(out / f"{name}.csv", result[name].to_csv(index=False))
    text = ["# Speculative decoding and an 8-bit KV cache", "", "Settings: " + ", ".join(f"{k}={v}" for k, v in config.items()),
            "", "## Speedup over the model alone, paired by round", "", report.markdown_table(result["summary"]),
            "", "## Memory (kv_mib: the KV buffer each server logged)", "", report.markdown_table(result["memory"]), ""]
    write_atomic(out / "report.md", "\n".join(text))
    return out / "report.md"


if __name__ == "__main__":
    raise SystemExit(main())
