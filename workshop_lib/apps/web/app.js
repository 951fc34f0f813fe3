// Private semantic search and a chat model in the browser (taught in 07_browser_inference).
// The models, the tokenizer, ONNX Runtime Web, wllama and the corpus index all come from this page's own
// server on 127.0.0.1; a question is embedded and answered here, on this machine, and never sent anywhere.
import { WordPiece } from "./wordpiece.js";
import { generate, loadChat } from "./chat.js";

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

// ---- the chat model (chat.js) and answers from the documents ----
lab.chatModel = { ready: false, error: null };

lab.loadChat = async ({ threads = null } = {}) => {
  if (lab.chatModel.wllama) await lab.chatModel.wllama.exit(); // a new thread count needs a new instance
  lab.chatModel = { ready: false, error: null };
  $("chat-load").disabled = true;
  try {
    const onProgress = (loaded, total) => {
      $("chat-progress").max = total || loaded;
      $("chat-progress").value = loaded;
      $("chat-status").textContent = `Downloading the model from this machine: ${(loaded / 1e6).toFixed(0)}` +
        ` of ${(total / 1e6).toFixed(0)} MB...`;
    };
    const loaded = await loadChat({ threads, onProgress });
    lab.chatModel = { ...loaded, ready: true, error: null };
    $("chat-backend").textContent = loaded.backend;
    $("chat-status").textContent = `Chat model ready in ${(loaded.loadMs / 1000).toFixed(1)} s: ${loaded.reason}.`;
    for (const id of ["chat-send", "chat-ask"]) $(id).disabled = false;
  } catch (err) {
    lab.chatModel.error = String(err);
    $("chat-status").textContent = `The chat model cannot run here: ${err}`;
  }
  $("chat-load").disabled = false;
  const { wllama, ...info } = lab.chatModel;
  return info;
};

function showProgress(text, arrivals, start) {
  const seconds = (arrivals.at(-1) - arrivals[0]) / 1000;
  const rate = arrivals.length > 1 ? ` · ${((arrivals.length - 1) / seconds).toFixed(1)} tokens/s` : "";
  $("chat-speed").textContent = `first token after ${(arrivals[0] - start).toFixed(0)} ms${rate}`;
}

function showResult(result) {
  if (result.ttftMs === null) { $("chat-speed").textContent = "the model wrote nothing"; return; }
  $("chat-speed").textContent = `${result.tokens} tokens · first after ${result.ttftMs.toFixed(0)} ms · ` +
    `${result.decodeTps ? result.decodeTps.toFixed(1) : "?"} tokens/s while decoding (${lab.chatModel.backend})`;
}

lab.chat = async (prompt, options = {}) => {
  const result = await generate(lab.chatModel.wllama, [{ role: "user", content: prompt }], options,
    (text, arrivals, start) => { $("chat-answer").textContent = text; showProgress(text, arrivals, start); });
  showResult(result);
  return result;
};

// The sources come first in the reply, as numbers: the grammar llama.cpp builds from this schema lets the
// model write nothing else, so every answer cites something it was given.
function citedSchema(k) {
  return { type: "object", required: ["sources", "answer"], properties: {
    sources: { type: "array", minItems: 1, maxItems: k, items: { type: "integer", minimum: 1, maximum: k } },
    answer: { type: "string", maxLength: 600 } } };
}

function groundedMessages(question, hits, contextChars) {
  const sources = hits.map((h, i) => `[${i + 1}] ${h.path}${h.heading ? " > " + h.heading : ""}\n` +
    h.text.slice(0, contextChars)).join("\n\n");
  return [
    { role: "system", content: "You answer questions about llama.cpp from the numbered sources only. Reply in " +
      "JSON: first the numbers of the sources you use, then a short answer." },
    { role: "user", content: `Sources:\n\n${sources}\n\nQuestion: ${question}` },
  ];
}

// What the reply holds so far: the sources array, and the answer string even while it is still open.
function partialReply(text) {
  const sources = (text.match(/"sources"\s*:\s*\[([\d,\s]*)\]/)?.[1] ?? "").split(",").map(Number).filter(Boolean);
  const open = text.match(/"answer"\s*:\s*"((?:[^"\\]|\\.)*)/);
  let answer = "";
  if (open) {
    for (let body = open[1]; body && !answer; body = body.slice(0, -1)) {
      try { answer = JSON.parse(`"${body}"`); } catch { /* cut inside an escape: drop a character */ }
    }
  }
  return { sources, answer };
}

lab.ask = async (question, { k = 3, contextChars = 1200, maxTokens = 200 } = {}) => {
  const { hits, ms: searchMs } = await lab.search(question, k);
  show({ ms: searchMs, hits });
  const result = await generate(lab.chatModel.wllama, groundedMessages(question, hits, contextChars),
    { max_tokens: maxTokens, response_format: { type: "json_schema", json_schema: { name: "cited_answer",
      schema: citedSchema(k) } } },
    (text, arrivals, start) => { $("chat-answer").textContent = partialReply(text).answer;
      showProgress(text, arrivals, start); });
  showResult(result);
  const { sources, answer } = partialReply(result.text);
  const cited = [...new Set(sources)].filter((n) => n >= 1 && n <= hits.length).map((n) => ({ n, ...hits[n - 1] }));
  $("chat-sources").replaceChildren(...cited.map((c) => {
    const li = document.createElement("li");
    li.textContent = `[${c.n}] ${c.path}${c.heading ? " > " + c.heading : ""}`;
    return li;
  }));
  $("chat-answer").textContent = answer;
  return { ...result, answer, cited, hits, searchMs };
};

// The whole page's memory (its workers included), where the browser measures it (cross-origin isolated pages).
lab.memory = async () => {
  if (!performance.measureUserAgentSpecificMemory) return null;
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 20000));
  const measured = await Promise.race([performance.measureUserAgentSpecificMemory(), timeout]);
  return measured ? measured.bytes : null;
};

$("chat-load").addEventListener("click", () => lab.loadChat());
$("chat-send").addEventListener("click", () => lab.chat($("chat-prompt").value));
$("chat-ask").addEventListener("click", () => lab.ask($("chat-prompt").value));
