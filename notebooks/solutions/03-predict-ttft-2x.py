# EXERCISE 03-predict-ttft-2x
# twice the prompt tokens at section 1's prefill speed: about twice section 1's TTFT
my_ttft_2x_s = 2 * honest["ttft_s"]
