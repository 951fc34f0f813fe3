"""Microsoft Foundry Local from Python with the SDK v2, ``foundry_local_sdk`` (taught in 01_foundry_local).

The SDK carries Foundry Local's native runtime, so it runs models *inside this Python process* on
Windows, macOS and Linux alike, and can also start Foundry Local's OpenAI-compatible web service.
"""
import argparse
import time

import pandas as pd
import psutil
from tqdm.auto import tqdm

from . import convert, server
from .bench import stream_once, timing_row
from .config import cache_dir
from .datasets import load_prompts
from .endpoint import connect

APP_NAME = "local-llm-lab"


def start_manager(web_port: int = None):
    """Initialize the Foundry Local runtime in this process, once, with the workshop's folders.

    The manager is a process-wide singleton: a second call returns the same one."""
    from foundry_local_sdk import Configuration, FoundryLocalManager, LogLevel

    if FoundryLocalManager.instance is None:
        home = cache_dir() / "foundry"
        web = Configuration.WebService(urls=f"http://127.0.0.1:{web_port or server.choose_port()}")
        FoundryLocalManager.initialize(Configuration(
            app_name=APP_NAME, app_data_dir=str(home / "data"), model_cache_dir=str(home / "models"),
            logs_dir=str(home / "logs"), log_level=LogLevel.ERROR, web=web))
    return FoundryLocalManager.instance


def catalog_table(manager) -> pd.DataFrame:
    """The public catalog as a table; offline it is empty, and we say why instead of failing."""
    rows = [{"alias": m.alias, "id": m.id, "task": m.info.task, "cached": m.is_cached,
             "loaded": m.is_loaded} for m in manager.catalog.list_models()]
    if not rows:
        print("The public Foundry Local catalog is empty: it is fetched from the internet, and this "
              "machine is offline (or the catalog service is unreachable). Models you bring yourself "
              "(BYOM, below) still work.")
    return pd.DataFrame(rows, columns=["alias", "id", "task", "cached", "loaded"])


def download(model) -> None:
    """Download a catalog model into the cache, with a progress bar (needs internet)."""
    with tqdm(total=100, desc=f"download {model.alias}", unit="%") as bar:
        model.download(lambda percent: bar.update(percent - bar.n))


def register_byom(manager, alias: str, version: int = 1):
    """Convert the shipped GGUF ``alias`` to ONNX (cached) and register it in the LOCAL catalog.

    Registrations persist across processes, so look the model up first: registering twice fails."""
    from foundry_local_sdk import CatalogType, ModelInfoBuilder

    local = manager.get_catalog(CatalogType.LOCAL)
    name = f"{alias}-byom"
    if (model := local.get_model(name)) is not None:
        return model
    model_dir = convert.ensure_onnx_model(alias)
    with ModelInfoBuilder() as info:
        info.set_string_property("task", "chat-completion")
        info.set_string_property("display_name", f"{alias} (converted from GGUF, int4)")
        return local.register_model(model_dir, f"{name}:{version}", info)


def timed_load(model) -> float:
    """Load a model into memory; return the seconds it took."""
    start = time.perf_counter()
    model.load()
    return time.perf_counter() - start


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
    load_s = timed_load(model)
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
    """``python -m workshop_lib.foundry serve|compare``: a Foundry Local web service, or the lab-01
    runtime comparison printed as a table."""
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.foundry", description=main.__doc__)
    parser.add_argument("command", choices=["serve", "compare"])
    parser.add_argument("--port", type=int, help="serve: port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--alias", default="qwen2.5-coder-0.5b", help="compare: which shipped model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    manager = start_manager(args.port)
    if args.command == "serve":
        manager.start_web_service()
        print(f"Foundry Local web service at {manager.urls[0]}", flush=True)
        while True:  # until the process is stopped
            time.sleep(3600)
    model = register_byom(manager, args.alias)
    prompts = load_prompts("bench")
    lab = connect()
    results = [measure_foundry(model, prompts, args.max_tokens, args.rounds),
               measure_llamacpp(lab, args.alias, prompts, args.max_tokens, args.rounds)]
    print(comparison_table(results).round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
