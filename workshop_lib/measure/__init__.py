"""Measuring: ``bench`` (timing streamed requests), ``report`` (summaries, exports), ``plots``,
``compare`` (one model on two runtimes), and ``stats`` (Wilson, McNemar, paired bootstrap, kappa).
Imports the runtime and the foundation, nothing above.
"""
