# EXERCISE 00-tpot
def ttft_and_tpot(start, arrivals, end, tokens):
    """(ttft_s, tpot_s) of one streamed answer, from its clock readings and the server's token count."""
    ttft_s = arrivals[0] - start  # the wait for the first piece: prefill plus the first token
    # the time after the first token, shared by the tokens after the first
    tpot_s = (end - arrivals[0]) / (tokens - 1)
    return ttft_s, tpot_s
