"""Same weights, two runtimes: Foundry Local in-process vs the embedded llama-server (taught in 01).

``python -m workshop_lib.measure.compare`` prints lesson 01's comparison table from a terminal.
"""
import argparse
import time

import pandas as pd
import psutil

from ..datasets import load_prompts
from ..runtime import foundry, server
from ..runtime.endpoint import connect
from .bench import stream_once, timing_row


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
    the server process that serves ``alias`` (its KV cache for every slot included)."""
    load_s = server.reload_model(lab.base_url, alias)
    stream_once(lab.client, alias, prompts[0], max_tokens=4)  # warm-up
    rows = [stream_once(lab.client, alias, p, max_tokens=max_tokens) for _ in range(rounds) for p in prompts]
    return {"runtime": "llama.cpp (GGUF)", "load_s": load_s, "rss_mb": server.model_rss_mb(alias),
            "requests": pd.DataFrame(rows)}


def comparison_table(results: list) -> pd.DataFrame:
    """One line per runtime: load time, memory, median TTFT and decode speed, a sample answer."""
    return pd.DataFrame([{
        "runtime": r["runtime"], "load_s": r["load_s"], "rss_mb": r["rss_mb"],
        "ttft_s_p50": r["requests"]["ttft_s"].median(), "decode_tps_p50": r["requests"]["decode_tps"].median(),
        "requests": len(r["requests"]), "sample": r["requests"]["text"].iloc[0][:80],
    } for r in results])


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
    results = [measure_foundry(model, prompts, args.max_tokens, args.rounds),
               measure_llamacpp(lab, args.alias, prompts, args.max_tokens, args.rounds)]
    print(comparison_table(results).round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
