# EXERCISE 04-app-predict
# A reasoned guess: retrieval puts a supporting chunk in the top 5 for most questions, and a schema that
# forces a citation makes the model pick one of the five; it picks well about as often as it answers well.
my_prediction = 0.6
