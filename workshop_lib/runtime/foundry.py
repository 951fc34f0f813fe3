"""Microsoft Foundry Local from Python with the SDK v2, ``foundry_local_sdk`` (taught in 01_foundry_local).

The SDK carries Foundry Local's native runtime, so it runs models *inside this Python process* on
Windows, macOS and Linux alike, and can also start Foundry Local's OpenAI-compatible web service.
"""
import argparse
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import convert, models, server
from ..config import cache_dir, setting
from ..errors import WorkshopError

APP_NAME = "local-llm-lab"


def start_manager(web_port: int = None):
    """Initialize the Foundry Local runtime in this process, once, with the workshop's folders.

    The manager is a process-wide singleton: a second call returns the same one."""
    from foundry_local_sdk import Configuration, FoundryLocalManager, LogLevel

    if FoundryLocalManager.instance is None:
        home = cache_dir() / "foundry"
        web = Configuration.WebService(urls=f"http://127.0.0.1:{web_port or server.choose_port()}")
        FoundryLocalManager.initialize(Configuration(
            app_name=APP_NAME, app_data_dir=str(home / "data"), model_cache_dir=str(model_cache_dir()[0]),
            logs_dir=str(home / "logs"), log_level=LogLevel.ERROR, web=web))
    return FoundryLocalManager.instance


CLI_DEFAULT_CACHE = Path.home() / ".foundry" / "cache" / "models"  # the `foundry` CLI's default


def model_cache_dir() -> tuple:
    """``(folder, why)``: where the runtime looks for downloaded models. The models the ``foundry`` CLI
    already downloaded are reused, so nobody downloads the same gigabytes twice over the room's Wi-Fi:
    the ``foundry_cache_dir`` setting, else what ``foundry cache location`` prints, else the CLI's
    default folder if it exists, else the workshop's own cache."""
    if chosen := setting("foundry_cache_dir"):
        return Path(chosen).expanduser(), "set by WORKSHOP_FOUNDRY_CACHE_DIR"
    if (cli := shutil.which("foundry")) and (found := _cli_cache_location(cli)):
        return found, "the Foundry Local CLI's cache (`foundry cache location`)"
    if CLI_DEFAULT_CACHE.is_dir():
        return CLI_DEFAULT_CACHE, "the Foundry Local CLI's default cache"
    return cache_dir() / "foundry" / "models", "the workshop's own cache (no Foundry Local CLI cache found)"


def _cli_cache_location(cli: str):
    try:
        out = subprocess.run([cli, "cache", "location"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for candidate in re.findall(r"(?:[A-Za-z]:)?[\\/][^\s'\"]+", out.stdout):
        if Path(candidate).is_dir():
            return Path(candidate)
    return None


def catalog_table(manager) -> pd.DataFrame:
    """The public catalog as a table; offline it is empty, and we say why instead of failing."""
    rows = [{"alias": m.alias, "id": m.id, "task": m.info.task, "cached": m.is_cached,
             "loaded": m.is_loaded} for m in manager.catalog.list_models()]
    folder, why = model_cache_dir()
    print(f"Looking for downloaded models in {folder} ({why}).")
    if not rows:
        print("The public Foundry Local catalog is empty: it is fetched from the internet, and this "
              "machine is offline (or the catalog service is unreachable). Models you bring yourself "
              "(BYOM, below) still work.")
    return pd.DataFrame(rows, columns=["alias", "id", "task", "cached", "loaded"])


def cached_models(catalog: pd.DataFrame) -> list:
    """Aliases of catalog chat models already downloaded, smallest name first (no download needed)."""
    chat = catalog[catalog["cached"] & catalog["task"].astype(str).str.contains("chat")]
    return sorted(chat["alias"].unique(), key=len)


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
    model = local.get_model(name)
    if model is not None and not model.is_cached:  # registered from a folder since removed (another cache)
        local.unregister_model(model.id)
        model = None
    if model is not None:
        return model
    model_dir = convert.ensure_onnx_model(alias)
    with ModelInfoBuilder() as info:
        info.set_string_property("task", "chat-completion")
        info.set_string_property("display_name", f"{alias} (converted from GGUF, int4)")
        return local.register_model(model_dir, f"{name}:{version}", info)


# How a Foundry-only learner gets the embedded backend for the parts of a lesson that need it.
# `lab.py` skips the GGUF packages and the build while a Foundry endpoint is set, so that goes first.
SETUP_STEP = ("unset FOUNDRY_LOCAL_ENDPOINT and WORKSHOP_ENDPOINT and run `python lab.py setup` (it installs the "
              "shipped GGUF files and builds llama-server, once, about 10 minutes on 2 cores)")
SWITCH_STEP = ("stop the Foundry Local service (`foundry service stop`; on the 0.10 preview `foundry server stop`) "
               "so that `wl.connect()` starts the embedded server, and run this notebook again")


def skipped(what: str, needs: str) -> str:
    """The sentence a lesson prints when it skips ``what`` for lack of ``needs``: what was skipped,
    why, and the commands that make it run."""
    return f"Skipped {what}: it needs {needs}, which the embedded llama.cpp backend provides. To run it: {SETUP_STEP}, then {SWITCH_STEP}."


def byom_missing(alias: str) -> str:
    """Why ``alias`` cannot be brought to Foundry Local here, or "" if it can: a converted ONNX model
    is cached, or the GGUF is (its packages are installed, as the embedded backend installs them)."""
    if (convert.onnx_dir(alias) / "genai_config.json").exists():
        return ""
    spec = models.get_spec(alias)
    if spec.path.exists():
        return ""
    try:
        models.part_paths(spec)
    except WorkshopError as exc:
        return (f"bringing your own model needs the GGUF of {alias}, and {exc.problem[0].lower()}"
                f"{exc.problem[1:]} Fix: {exc.fix} (or {SETUP_STEP}).")
    return ""


def model_files(folder) -> pd.DataFrame:
    """The files of a model folder with their sizes, largest first (what a format puts on disk)."""
    rows = [{"file": p.name, "MB": round(p.stat().st_size / 1e6, 1)} for p in Path(folder).iterdir() if p.is_file()]
    return pd.DataFrame(rows).sort_values("MB", ascending=False, ignore_index=True)


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
