"""``doctor()``: check a laptop is ready for the workshop, with a fix for each failure.

Taught in 00_setup_and_first_chat; instructors run ``python -m workshop_lib doctor`` on every laptop.
Checks are per backend: a Foundry Local user needs no weight packages and no llama.cpp build, so
for them those checks are information, not failures.
"""
import importlib.metadata
import os
import shutil
import sys
from dataclasses import dataclass, replace

from . import endpoint, llamacpp, models, server
from ..errors import WorkshopError

PACKAGES = ("openai", "pandas", "matplotlib", "ipywidgets", "tqdm", "jupyterlab", "foundry-local-sdk")


@dataclass
class Check:
    name: str
    status: str  # "ok", "fail", or "info" (nothing wrong, but worth knowing)
    detail: str
    fix: str = ""


def doctor(full: bool = False, verbose: bool = True) -> list:
    """Run every check; ``full`` re-hashes the model files too (a few seconds per GB)."""
    backend = chosen_backend()
    embedded_only = [*check_models(full), check_llama_server()]
    if backend != "embedded":
        embedded_only = [not_needed(c, backend) for c in embedded_only]
    checks = [check_python(), *check_packages(), *embedded_only, check_foundry(), *check_endpoint()]
    if verbose:
        print(f"Backend: {backend}\n" + report(checks))
    return checks


def chosen_backend() -> str:
    """The backend ``connect()`` would use, found without starting anything."""
    try:
        found = endpoint.find_endpoint(start=False)
    except WorkshopError:  # a malformed endpoint setting: check_endpoint reports it
        return "environment" if os.environ.get("WORKSHOP_ENDPOINT") else "foundry-service"
    return found[0] if found else "embedded"


def not_needed(check: Check, backend: str) -> Check:
    """A failed check of something only the embedded server needs becomes information."""
    if check.status != "fail":
        return check
    return replace(check, status="info", detail=f"{check.detail} (not needed: you use the {backend} backend)",
                   fix=f"only for the embedded server: {check.fix}" if check.fix else "")


def report(checks: list) -> str:
    mark = {"ok": "OK  ", "fail": "FAIL", "info": "info"}
    lines = [f"[{mark[c.status]}] {c.name}: {c.detail}" + (f"\n        fix: {c.fix}" if c.fix else "")
             for c in checks]
    failed = sum(c.status == "fail" for c in checks)
    return "\n".join(lines + [f"{failed} problem(s) found." if failed else "All checks passed."])


def check_python(version_info: tuple = None) -> Check:
    version_info = version_info or sys.version_info  # a test passes another version
    version = ".".join(map(str, version_info[:3]))
    if tuple(version_info) >= (3, 11):
        return Check("python", "ok", f"{version} at {sys.executable}")
    return Check("python", "fail", f"{version} is too old", "Install Python 3.11 or newer, then "
                 "run `python lab.py start` with it.")


def check_packages() -> list:
    checks = []
    for name in PACKAGES:
        try:
            checks.append(Check(f"package {name}", "ok", importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(f"package {name}", "fail", "not installed",
                                "pip install -r requirements.txt (or rerun `python lab.py start`)"))
    return checks


def check_models(full: bool) -> list:
    checks = []
    for alias, spec in models.load_registry().items():
        try:
            models.part_paths(spec)
        except WorkshopError as exc:
            checks.append(Check(f"model {alias}", "fail", exc.problem, exc.fix))
            continue
        if not spec.path.exists():
            checks.append(Check(f"model {alias}", "info", "parts installed, not assembled yet",
                                "python -m workshop_lib setup (or let connect() do it)"))
        elif full and not models.verify_model(alias):
            checks.append(Check(f"model {alias}", "fail", f"{spec.path} fails its SHA-256 check",
                                "Delete it and run `python -m workshop_lib setup`."))
        else:
            checks.append(Check(f"model {alias}", "ok", f"{spec.path} ({spec.size / 1e6:.0f} MB"
                                + (", SHA-256 verified)" if full else ")")))
    return checks


def check_llama_server(os_name: str = None) -> Check:
    if llamacpp.is_built():
        return Check("llama-server", "ok", str(llamacpp.binary()))
    try:
        llamacpp.find_toolchain(os_name)
    except WorkshopError as exc:
        return Check("llama-server", "fail", "not built, and " + exc.problem, exc.fix)
    return Check("llama-server", "info", "not built yet (about 7 minutes on 2 cores)",
                 "python -m workshop_lib build")


def check_foundry() -> Check:
    cli = shutil.which("foundry")
    if not cli:
        return Check("foundry local", "info", "no `foundry` CLI (optional: the embedded server stands in)",
                     "optional: install Foundry Local (winget / brew, see README)")
    url = endpoint.foundry_service_url()
    return Check("foundry local", "ok" if url else "info",
                 f"service at {url}" if url else f"{cli} found, service not running",
                 "" if url else "foundry service start (on the 0.10 preview: foundry server start)")


def check_endpoint() -> list:
    """The endpoint connect() would use answers, and which role has a model there."""
    try:
        found = endpoint.find_endpoint(start=False)
        if found is None:
            return [Check("endpoint", "info", "embedded server not running (connect() starts it)",
                          "python -m workshop_lib serve")]
        backend, base_url, api_key = found
        served = endpoint.list_models(base_url, api_key)
        models, missing = endpoint.resolve_roles(backend, served, base_url)
    except WorkshopError as exc:
        return [Check("endpoint", "fail", exc.problem, exc.fix)]
    log = f"; log {server.server_home() / 'llama-server.log'}" if backend == "embedded" else ""
    roles = [Check(f"model for {role}", "info", "not served: lessons that compare two models skip that part",
                   error.fix) for role, error in missing.items()]
    chosen = ", ".join(f"{role} = {model}" for role, model in models.items() if model)
    return [Check("endpoint", "ok", f"{backend} at {base_url} serves {', '.join(served)}; {chosen}{log}"), *roles]
