# EXERCISE 01-bits
# the file's size in bits (8 per byte), shared by every weight the file stores
my_bits = {alias: registry.loc[alias, "size"] * 8 / counts[alias] for alias in chat_models}
