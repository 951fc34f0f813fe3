# EXERCISE 03-timed-request
import time


def timed_request(client, model, messages, max_tokens):
    """Send one streamed chat request; return {"ttft_s": ..., "tpot_s": ..., "decode_tps": ...}."""
    start = time.perf_counter()  # before the request leaves: TTFT includes sending it and the prefill
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    arrivals, usage = [], None
    for chunk in stream:
        usage = chunk.usage or usage  # the last chunk: usage, and no choices
        if chunk.choices and chunk.choices[0].delta.content:  # a token arrived (the first chunk has only the role)
            arrivals.append(time.perf_counter())
    end = time.perf_counter()
    tokens = usage.completion_tokens if usage else len(arrivals)  # no usage: chunks, an estimate
    ttft = arrivals[0] - start
    tpot = (end - arrivals[0]) / (tokens - 1)  # the first token is paid by TTFT
    return {"ttft_s": ttft, "tpot_s": tpot, "decode_tps": 1 / tpot}
