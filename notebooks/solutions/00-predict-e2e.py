# EXERCISE 00-predict-e2e
# the wait for the first token, then one TPOT for each further token of an answer twice as long
my_prediction = base["ttft_s"] + base["tpot_s"] * (2 * base["completion_tokens"] - 1)
