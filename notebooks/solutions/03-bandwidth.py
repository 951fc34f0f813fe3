# EXERCISE 03-bandwidth
# each token's step reads the whole file once: bytes per token x tokens per second, then 10^9 bytes per GB
my_bandwidth_gbs = registry[lab.slm].size * slm_decode_tps / 1e9 if known else None
