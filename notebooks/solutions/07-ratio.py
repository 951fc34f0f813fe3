# EXERCISE 07-ratio
# A guess from the reasoning in section 9: 128-bit WASM SIMD against native 256-bit kernels, same threads.
my_predicted_ratio = 2.0
