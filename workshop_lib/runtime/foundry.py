"""Microsoft Foundry Local from Python with the SDK v2, ``foundry_local_sdk`` (taught in 01_foundry_local).

The SDK carries Foundry Local's native runtime, so it runs models *inside this Python process* on
Windows, macOS and Linux alike, and can also start Foundry Local's OpenAI-compatible web service.
"""
import argparse
import time

import pandas as pd
from tqdm.auto import tqdm

from . import convert, server
from ..config import cache_dir

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


def main(argv=None) -> int:
    """``python -m workshop_lib.runtime.foundry serve``: a Foundry Local web service on 127.0.0.1."""
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.runtime.foundry", description=main.__doc__)
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    manager = start_manager(args.port)
    manager.start_web_service()
    print(f"Foundry Local web service at {manager.urls[0]}", flush=True)
    while True:  # until the process is stopped
        time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main())
