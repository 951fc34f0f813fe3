"""Measuring: ``bench`` (timing streamed requests), ``report`` (summaries, exports), ``plots``,
``compare`` (one model on two runtimes), ``stats`` (Wilson, McNemar, paired bootstrap, kappa),
``machine`` (bandwidth, GFLOP/s, the decode roofline), ``weights`` (a GGUF's tensor types) and
``kvcache`` (the KV cache's size). Imports the runtime and the foundation, nothing above.
"""
