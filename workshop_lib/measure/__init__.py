"""Measuring: ``bench`` (timing streamed requests), ``report`` (summaries, exports), ``plots``, and
``compare`` (one model on two runtimes). Imports the runtime and the foundation, nothing above.
"""
