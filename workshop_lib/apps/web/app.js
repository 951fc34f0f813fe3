// Private semantic search in the browser (taught in 07_browser_inference).
// The model, its tokenizer, ONNX Runtime Web and the corpus index all come from this page's own server on
// 127.0.0.1; a query is embedded here, on this machine, and never sent anywhere.
import { WordPiece } from "./wordpiece.js";

const params = new URLSearchParams(location.search);
const wanted = params.get("ep") || "auto"; // auto | webgpu | wasm
const $ = (id) => document.getElementById(id);
const lab = { ready: false, error: null, ep: null, webgpu: { tried: false, available: false, reason: "" },
  threads: 1, loadMs: 0, calls: [] };
window.lab = lab;

function status(text) { $("status").textContent = text; }

// WebGPU needs both the API and an adapter; headless or GPU-less browsers have neither or no adapter.
async function webgpuAdapter() {
  if (!("gpu" in navigator)) return "this browser has no navigator.gpu (WebGPU is off or unsupported)";
  try {
    const adapter = await navigator.gpu.requestAdapter();
    return adapter ? null : "navigator.gpu.requestAdapter() found no GPU adapter";
  } catch (err) {
    return `requestAdapter() failed: ${err}`;
  }
}

// Try WebGPU first (unless ?ep=wasm), fall back to WASM, and record which one ran and why.
async function createSession(modelBytes) {
  if (wanted !== "wasm") {
    lab.webgpu.tried = true;
    const problem = await webgpuAdapter();
    if (problem === null) {
      try {
        const ort = await import("/ort/ort.webgpu.min.mjs");
        configure(ort);
        const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ["webgpu"] });
        lab.webgpu.available = true;
        return { ort, session, ep: "webgpu" };
      } catch (err) {
        lab.webgpu.reason = `creating a WebGPU session failed: ${err}`;
      }
    } else {
      lab.webgpu.reason = problem;
    }
  }
  const ort = await import("/ort/ort.wasm.min.mjs");
  configure(ort);
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ["wasm"] });
  return { ort, session, ep: "wasm" };
}

function configure(ort) {
  ort.env.wasm.wasmPaths = "/ort/"; // the .wasm files come from our server, never a CDN
  // Threads need a cross-origin isolated page (the server sends COOP/COEP headers); else one thread.
  lab.threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = lab.threads;
}

function fromBase64(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

// One sentence -> one L2-normalized 384-d vector: token ids, the model, mean pooling over the tokens.
async function embedOne(text) {
  const ids = lab.tokenizer.encode(text);
  const n = ids.length;
  const tensor = (values) => new lab.ort.Tensor("int64", BigInt64Array.from(values, BigInt), [1, n]);
  const feeds = { input_ids: tensor(ids), attention_mask: tensor(ids.map(() => 1)),
    token_type_ids: tensor(ids.map(() => 0)) };
  const out = (await lab.session.run(feeds)).last_hidden_state;
  const dim = out.dims[2];
  const vector = new Float32Array(dim);
  for (let t = 0; t < n; t++) for (let d = 0; d < dim; d++) vector[d] += out.data[t * dim + d] / n;
  const norm = Math.hypot(...vector);
  return vector.map((v) => v / norm);
}

// Exposed for the notebook and the tests: embeddings with the milliseconds each call took.
lab.embed = async (texts) => {
  const vectors = [], ms = [];
  for (const text of texts) {
    const start = performance.now();
    vectors.push(Array.from(await embedOne(text)));
    ms.push(performance.now() - start);
  }
  return { vectors, ms };
};

// Cosine similarity against every chunk (vectors are normalized, so a dot product), best k first.
lab.search = async (query, k = 5) => {
  const start = performance.now();
  const q = await embedOne(query);
  const { dim, count, vectors, chunks } = lab.index;
  const scores = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += q[d] * vectors[i * dim + d];
    scores[i] = s;
  }
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]).slice(0, k);
  const ms = performance.now() - start;
  lab.calls.push({ query, ms });
  return { ms, hits: order.map((i) => ({ ...chunks[i], score: scores[i] })) };
};

async function fetchOk(url) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  return resp;
}

async function load() {
  const start = performance.now();
  status("Loading the tokenizer, the model (23 MB) and the corpus index from this machine...");
  const [tokenizerJson, modelBytes, index] = await Promise.all([
    fetchOk("/model/tokenizer.json").then((r) => r.json()),
    fetchOk("/model/model.onnx").then((r) => r.arrayBuffer()),
    fetchOk("/index.json").then((r) => r.json()),
  ]);
  lab.tokenizer = new WordPiece(tokenizerJson, index.max_length);
  lab.index = { ...index, vectors: fromBase64(index.vectors) };
  const { ort, session, ep } = await createSession(new Uint8Array(modelBytes));
  Object.assign(lab, { ort, session, ep, loadMs: performance.now() - start });
  await embedOne("warm-up"); // the first run also compiles kernels: keep it out of the timings
  lab.ready = true;
  $("ep").textContent = ep === "webgpu" ? "WebGPU" : `WASM (${lab.threads} thread${lab.threads > 1 ? "s" : ""})`;
  $("webgpu").textContent = lab.webgpu.available ? "WebGPU: used"
    : `WebGPU: not used (${lab.webgpu.tried ? lab.webgpu.reason : "not tried: ?ep=wasm"})`;
  status(`Ready in ${(lab.loadMs / 1000).toFixed(1)} s: ${index.count} chunks of ${index.corpus}.`);
  $("query").disabled = false;
}

function show({ ms, hits }) {
  $("latency").textContent = `${ms.toFixed(1)} ms for this query (tokenize + model + ${lab.index.count} cosines)`;
  $("results").replaceChildren(...hits.map((h) => {
    const li = document.createElement("li");
    const title = document.createElement("strong");
    title.textContent = `${h.score.toFixed(3)}  ${h.path}${h.heading ? " > " + h.heading : ""}`;
    const preview = document.createElement("p");
    preview.textContent = h.preview;
    li.append(title, preview);
    return li;
  }));
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (lab.ready && $("query").value.trim()) show(await lab.search($("query").value.trim()));
});

load().catch((err) => {
  lab.error = String(err);
  status(`Failed: ${err}`);
});
