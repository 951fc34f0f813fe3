# EXERCISE 06-overhead
if skipped:  # Open WebUI cannot run on this machine (section 1): nothing was measured
    overhead_ms = None
else:
    ttft = results.pivot(index="pair", columns="path", values="ttft_s")  # a row per pair, a column per path
    overhead_ms = (ttft["open-webui"] - ttft["direct"]).median() * 1000  # median of the paired differences, in ms
