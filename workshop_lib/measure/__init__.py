"""Measuring: ``bench`` (timing streamed requests), ``report`` (summaries, exports), ``plots``,
``compare`` (one model on two runtimes), ``stats`` (Wilson, McNemar, paired bootstrap, kappa),
``machine`` (bandwidth, GFLOP/s, the decode roofline), ``weights`` (a GGUF's tensor types),
``kvcache`` (the KV cache's size, what fits in RAM), ``load`` (open-loop arrivals, goodput) and
``prefill`` (TTFT against prompt length). Imports the runtime and the foundation, nothing above.
"""
