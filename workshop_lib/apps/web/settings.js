// How the page's chat model runs (07_browser_inference shows this file, and its exercise rewrites
// chooseThreads). The notebook can serve its own version of this file: PageServer(..., settings_js=...).

// How many WebAssembly threads llama.cpp may use. `cores` is navigator.hardwareConcurrency; `isolated`
// says whether the page is cross-origin isolated, without which the browser gives it no shared memory
// and so no threads. This is wllama's own default: half the cores.
export function chooseThreads(cores, isolated) {
  return Math.max(1, Math.floor(cores / 2));
}

// Sampling for every reply: greedy (temperature 0), so the tab and the native server can be compared
// on the same text. llama-server's names, because wllama runs llama-server's own request handling.
export const sampling = { temperature: 0, max_tokens: 128 };

// Context window in tokens: the KV cache is allocated for this many up front, inside the tab's memory.
export const contextTokens = 2048;
