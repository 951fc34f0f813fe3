"""One model, two runtimes: Foundry Local in-process vs the embedded llama-server (taught in 01).

Equal terms: both sides get the same prompts, a warm-up request, and compute every prompt from scratch.
Foundry Local's ``ChatSession`` keeps no cache across sessions and each request gets a fresh one;
llama-server would reuse a repeated prompt's cache, so it is asked not to (``bench.plan_requests``).
The two models are not the same bytes: the ONNX model is the GGUF dequantized and quantized again to
int4, so a difference mixes the runtime with the quantization.

``python -m workshop_lib.measure.compare`` prints lesson 01's comparison table from a terminal.
"""
import argparse
import time

import pandas as pd
import psutil

from ..datasets import load_prompts
from ..errors import WorkshopError
from ..runtime import foundry, server
from ..runtime.endpoint import connect
from .bench import plan_requests, stream_once, timing_row


def chat_stream(model, messages: list, max_tokens: int = 128, temperature: float = 0.0,
                on_text=None) -> dict:
    """One streamed chat turn through the in-process runtime, timed like ``bench.stream_once``.

    Each call uses a fresh ``ChatSession``, so no earlier turn leaks into the prompt."""
    from foundry_local_sdk import ChatSession, MessageItem, Request, RequestOptions, SearchOptions, TextItem

    items = [_message(MessageItem, m) for m in messages]
    with ChatSession(model) as session:
        session.set_options(RequestOptions(search=SearchOptions(temperature=temperature,
                                                                max_output_tokens=max_tokens)))
        session.set_streaming(True)
        request = Request()
        for item in items:
            request.add_item(item)
        start, arrivals, pieces = time.perf_counter(), [], []
        with request, session.process_streaming_request(request) as stream:
            for item in stream:
                if isinstance(item, TextItem) and item.text:
                    arrivals.append(time.perf_counter())
                    pieces.append(item.text)
                    if on_text:
                        on_text(item.text)
            usage = stream.final_response.get_usage()
        end = time.perf_counter()
    return timing_row(model.id, start, arrivals, end, usage, None, "".join(pieces), None)


def _message(message_item, message: dict):
    role = message["role"]
    factory = {"system": message_item.system, "user": message_item.user,
               "assistant": message_item.assistant}[role]
    return factory(message["content"])


def measure_foundry(model, prompts: list, max_tokens: int, rounds: int = 1) -> dict:
    """Load time, memory and per-request timings of ``model`` on Foundry Local's in-process runtime."""
    process = psutil.Process()
    if model.is_loaded:
        model.unload()
    rss_before = process.memory_info().rss
    load_s = foundry.timed_load(model)
    chat_stream(model, prompts[0], max_tokens=4)  # warm-up: the first request allocates the KV cache
    rss_mb = (process.memory_info().rss - rss_before) / 1e6  # what the model added, once serving
    rows = [chat_stream(model, p, max_tokens=max_tokens) for _ in range(rounds) for p in prompts]
    return {"runtime": "Foundry Local (ONNX Runtime GenAI, int4)", "load_s": load_s, "rss_mb": rss_mb,
            "requests": pd.DataFrame(rows)}


def measure_llamacpp(lab, alias: str, prompts: list, max_tokens: int, rounds: int = 1) -> dict:
    """The same quantities for the GGUF on the embedded llama-server, over HTTP; memory is the RSS of
    the server process that serves ``alias`` (its KV cache for every slot included).

    Load time and memory are measured only where the server allows (model load/unload over HTTP, a
    process we can see); elsewhere they stay empty, and ``lab.supports`` says why."""
    load_s = None
    if lab.supports("model_management", "timing a fresh load of the model"):
        try:
            load_s = server.reload_model(lab.base_url, alias, api_key=lab.api_key)
        except (OSError, WorkshopError) as exc:  # a shared server: another client may load it meanwhile
            print(f"Load time not measured: reloading {alias} failed ({exc}); another program may be using it.")
    plan = plan_requests(lab, [alias])  # every prompt computed: no cache hit from an earlier round
    stream_once(lab.client, alias, prompts[0], max_tokens=4, **plan.options(alias))  # warm-up
    rows = [stream_once(lab.client, alias, plan.request(p), max_tokens=max_tokens, **plan.options(alias))
            for _ in range(rounds) for p in prompts]
    rss = server.model_rss_mb(alias) if lab.supports("process_memory", "reading the server's memory") else None
    return {"runtime": "llama.cpp (GGUF)", "load_s": load_s, "rss_mb": rss, "requests": pd.DataFrame(rows)}


def comparison_table(results: list) -> pd.DataFrame:
    """One line per runtime: load time, memory, median TTFT, prefill and decode speed, a sample answer.

    ``prefill_tps_p50`` is prompt tokens / TTFT per request: TTFT also holds the first decode step (and
    HTTP for llama.cpp), so it slightly understates prefill speed, the same way for both."""
    return pd.DataFrame([{
        "runtime": r["runtime"], "load_s": r["load_s"], "rss_mb": r["rss_mb"],
        "ttft_s_p50": r["requests"]["ttft_s"].median(), "prefill_tps_p50": _prefill_tps(r["requests"]).median(),
        "decode_tps_p50": r["requests"]["decode_tps"].median(),
        "prompt_tokens_p50": pd.to_numeric(r["requests"].get("prompt_tokens"), errors="coerce").median(),
        "requests": len(r["requests"]), "sample": r["requests"]["text"].iloc[0][:80],
    } for r in results])


def _prefill_tps(requests: pd.DataFrame) -> pd.Series:
    prompt = pd.to_numeric(requests.get("prompt_tokens", pd.Series(dtype=float)), errors="coerce")
    return prompt / requests["ttft_s"]


def main(argv=None) -> int:
    """``python -m workshop_lib.measure.compare``: lesson 01's runtime comparison as a table."""
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.measure.compare", description=main.__doc__)
    parser.add_argument("--alias", default="qwen2.5-coder-0.5b", help="which shipped model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    model = foundry.register_byom(foundry.start_manager(), args.alias)
    prompts = load_prompts("bench")
    lab = connect()
    print("Foundry Local: a fresh ChatSession per request, no cache across requests; llama.cpp: asked not to reuse "
          "cached prompts where the server allows (else unique prompts), see below.")
    results = [measure_foundry(model, prompts, args.max_tokens, args.rounds),
               measure_llamacpp(lab, args.alias, prompts, args.max_tokens, args.rounds)]
    print(comparison_table(results).round(2).to_string())
    print("\nMedian TTFT (s) per round: a prompt cache would make later rounds faster than round 0")
    print(pd.DataFrame({r["runtime"]: ttft_by_round(r["requests"], len(prompts)) for r in results}).round(3).to_string())
    return 0


def ttft_by_round(requests: pd.DataFrame, per_round: int) -> pd.Series:
    """Median TTFT of each round of ``per_round`` requests (requests are stored in round order)."""
    rounds = pd.Series(range(len(requests))) // per_round
    return requests["ttft_s"].groupby(rounds.values).median().rename_axis("round")


if __name__ == "__main__":
    raise SystemExit(main())
