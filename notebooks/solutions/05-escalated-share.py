# EXERCISE 05-escalated-share
# A guess from lesson 02's accuracies: the small model is wrong on about half of the items, and a cheap
# check catches some of those and escalates some right ones too.
my_prediction = 0.5  # share of the 200 requests the cascade sends to the large model, 0 to 1
