// The chat model in the tab (taught in 07_browser_inference): wllama runs llama.cpp compiled to
// WebAssembly on the same GGUF file the embedded server runs. The file, the runtime and its .wasm come
// from this page's own server on 127.0.0.1; nothing comes from a CDN or a model hub.
import { Wllama } from "/wllama/index.js";
import { chooseThreads, contextTokens, sampling } from "./settings.js";

// Which backend can run here, and why: WebGPU if the browser gives us a GPU adapter, else WebAssembly
// with threads if the page is cross-origin isolated (COOP + COEP headers), else one thread.
export async function chooseBackend(wantedThreads = null) {
  const canMemory64 = (() => {
    try { new WebAssembly.Memory({ address: "i64", initial: 1n }); return true; } catch { return false; }
  })();
  if (!canMemory64) {
    throw new Error("this browser cannot run the chat model: wllama's build needs WebAssembly Memory64 " +
      "(Chrome or Edge 133 or newer); Firefox and Safari need wllama's compat build, which this page does not load");
  }
  const isolated = self.crossOriginIsolated && typeof SharedArrayBuffer !== "undefined";
  const cores = navigator.hardwareConcurrency || 1;
  const threads = isolated ? (wantedThreads ?? chooseThreads(cores, isolated)) : 1;
  const gpu = await gpuProblem();
  const cpu = threads > 1 ? `WASM, ${threads} threads` : "WASM, 1 thread";
  const why = isolated ? `${cores} cores reported, ${threads} used`
    : "the page is not cross-origin isolated, so no SharedArrayBuffer and no threads";
  return {
    backend: gpu === null ? "webgpu" : threads > 1 ? "wasm-threads" : "wasm-single",
    threads, isolated, cores, nGpuLayers: gpu === null ? 999 : 0,
    reason: gpu === null ? `WebGPU adapter found; ${cpu} for the rest` : `${cpu} (${why}); no WebGPU: ${gpu}`,
  };
}

async function gpuProblem() {
  if (!("gpu" in navigator)) return "this browser has no navigator.gpu";
  if (!WebAssembly.Suspending) return "WebGPU in wllama needs JSPI (WebAssembly.Suspending)";
  try {
    return (await navigator.gpu.requestAdapter()) ? null : "requestAdapter() found no GPU adapter";
  } catch (err) {
    return `requestAdapter() failed: ${err}`;
  }
}

// The downloaded GGUF, held as bytes in the page. wllama reads a model from Blob-like objects (size,
// slice(a, b).arrayBuffer(), stream()). A real 0.5 GB Blob lives in Chromium's blob storage, which may page
// it to disk, and reading it back failed now and then in CI (NotReadableError): plain bytes cannot.
export class BytesFile {
  constructor(bytes) { this.bytes = bytes; this.size = bytes.byteLength; }
  part(start, end) {
    if (!this.bytes) throw new Error("the model file was released after loading");
    return this.bytes.slice(start, Math.min(end, this.size)); // a copy: wllama transfers the buffers it gets
  }
  slice(start = 0, end = this.size) {
    return { size: Math.max(0, Math.min(end, this.size) - start), arrayBuffer: async () => this.part(start, end).buffer };
  }
  stream(step = 8 << 20) {
    let offset = 0;
    return new ReadableStream({ pull: (controller) => {
      if (offset >= this.size) return controller.close();
      controller.enqueue(this.part(offset, offset + step));
      offset += step;
    } });
  }
  release() { this.bytes = null; } // the tab then holds the model once, in WebAssembly memory
}

// Download the GGUF with progress (it is about 0.5 GB) straight into one buffer of the announced size, so the
// tab never holds the file twice.
async function download(url, onProgress) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  const total = Number(resp.headers.get("Content-Length")) || 0;
  if (!total) throw new Error(`${url}: the server sent no Content-Length`);
  const bytes = new Uint8Array(total), reader = resp.body.getReader();
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > total) throw new Error(`${url}: more bytes than its Content-Length (${total})`);
    bytes.set(value, loaded);
    loaded += value.length;
    onProgress(loaded, total);
  }
  if (loaded !== total) throw new Error(`${url}: the download stopped at ${loaded} of ${total} bytes`);
  return new BytesFile(bytes);
}

export async function loadChat({ url = "/model/chat.gguf", threads = null, onProgress = () => {} } = {}) {
  const choice = await chooseBackend(threads);
  const start = performance.now();
  const file = await download(url, onProgress);
  const downloadMs = performance.now() - start;
  const wllama = new Wllama({ default: "/wllama/wasm/wllama.wasm" }, { suppressNativeLog: true });
  wllama.setCompat(null); // never fetch wllama's compat build from its CDN
  try {
    await wllama.loadModel([file], { n_threads: choice.threads, n_ctx: contextTokens,
      n_gpu_layers: choice.nGpuLayers, n_parallel: 1 });
  } catch (err) {
    throw new Error(`loading the model failed (${err}); a tab needs about 1 GB of free memory for it`);
  } finally {
    file.release(); // by now wllama has copied the file into WebAssembly memory, whichever way it reads it
  }
  return { wllama, ...choice, downloadMs, loadMs: performance.now() - start, bytes: file.size };
}

// One streamed reply, timed with the page's clock exactly as lesson 00 times a server: TTFT is the first
// text's arrival, decode tokens/s = (tokens - 1) / (end - first arrival).
export async function generate(wllama, messages, options = {}, onText = () => {}) {
  const start = performance.now(), arrivals = [];
  let text = "", timings = null, usage = null;
  const stream = await wllama.createChatCompletion({ messages, stream: true, cache_prompt: false,
    ...sampling, ...options });
  for await (const chunk of stream) {
    timings = chunk.timings ?? timings;
    usage = chunk.usage ?? usage;
    const piece = chunk.choices?.[0]?.delta?.content;
    if (piece) {
      arrivals.push(performance.now());
      text += piece;
      onText(text, arrivals, start);
    }
  }
  const end = performance.now();
  const tokens = timings?.predicted_n ?? usage?.completion_tokens ?? arrivals.length;
  const ttftMs = arrivals.length ? arrivals[0] - start : null;
  const decodeTps = tokens > 1 ? (tokens - 1) / ((end - arrivals[0]) / 1000) : null;
  return { text, ttftMs, e2eMs: end - start, tokens, decodeTps, arrivalsMs: arrivals.map((t) => t - start),
    promptTokens: timings?.prompt_n ?? usage?.prompt_tokens ?? null, timings };
}
