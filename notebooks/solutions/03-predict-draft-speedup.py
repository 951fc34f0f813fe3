# EXERCISE 03-predict-draft-speedup
# On a CPU the 0.5B decodes only about twice as fast as the 1.5B, so three guesses cost about 1.5 passes of
# the 1.5B before it verifies them, and verifying four tokens costs more than one: even with most guesses
# accepted, each step writes its tokens more slowly than the 1.5B alone. A prediction below 1.
my_draft_speedup = 0.7
