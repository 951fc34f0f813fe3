"""``python -m workshop_lib COMMAND``: the instructor's and the setup script's entry point."""
import argparse
import sys

from . import extras
from .runtime import checkup, llamacpp, models, server
from .errors import WorkshopError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop_lib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="assemble and verify the models, build llama-server")
    build_cmd = commands.add_parser("build", help="build llama-server from the llama-cpp-python sdist")
    build_cmd.add_argument("--check", action="store_true", help="only say whether it is built (exit 0) or not (1)")
    serve = commands.add_parser("serve", help="start the embedded server (or show the running one)")
    serve.add_argument("--port", type=int, help="default: WORKSHOP_PORT, else any free port")
    commands.add_parser("stop", help="stop the embedded server and the helper servers lessons started")
    commands.add_parser("status", help="is the embedded server running, and where")
    extra = commands.add_parser("require", help="install the packages a lesson needs (requirements-NAME.txt)")
    extra.add_argument("names", nargs="*", help="extras to install; none: list them")
    extra.add_argument("--all", action="store_true", help="every extra")
    web = commands.add_parser("webui", help="Open WebUI on the endpoint (lesson 06)")
    web.add_argument("action", choices=["install", "start", "status", "stop", "reset"])
    web.add_argument("--port", type=int)
    check = commands.add_parser("doctor", help="check this machine, with a fix for each problem")
    check.add_argument("--full", action="store_true", help="also re-hash every model file")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except WorkshopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def setup(args) -> int:
    for alias in models.load_registry():
        print(f"model {alias}: {models.ensure_model(alias)}")
    print(f"llama-server: {llamacpp.ensure_built()}")
    return 0


def build(args) -> int:
    if args.check:
        print("built" if llamacpp.is_built() else "not built")
        return 0 if llamacpp.is_built() else 1
    print(f"llama-server: {llamacpp.ensure_built()}")
    return 0


def serve(args) -> int:
    info = server.start_server(port=args.port)
    print(f"llama-server (pid {info.pid}) serves {', '.join(info.models)} at {info.base_url}\n"
          f"log: {info.log}")
    return 0


def stop(args) -> int:
    print("stopped" if server.stop_server() else "no server was running")
    for name in server.stop_helpers():  # e.g. lesson 05's throwaway server, left by a restarted kernel
        print(f"stopped {name}")
    return 0


def status(args) -> int:
    info = server.running_server()
    print(f"running (pid {info.pid}) at {info.base_url}, log {info.log}" if info else "not running")
    return 0 if info else 3


def require(args) -> int:
    names = extras.extra_names() if args.all else args.names
    for name in names:
        extras.require(name)
        print(f"extra {name}: installed")
    if not names:
        print("extras:", ", ".join(extras.extra_names()))
    return 0


def webui(args) -> int:
    from .apps import webui as app  # the top layer: imported only when asked for
    return app.main([args.action] + (["--port", str(args.port)] if args.port else []))


def doctor(args) -> int:
    checks = checkup.doctor(full=args.full)
    return 1 if any(c.status == "fail" for c in checks) else 0


COMMANDS = {"setup": setup, "build": build, "serve": serve, "stop": stop, "status": status,
            "doctor": doctor, "require": require,
            "webui": webui}

if __name__ == "__main__":
    sys.exit(main())
