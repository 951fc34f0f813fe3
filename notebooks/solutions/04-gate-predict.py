# EXERCISE 04-gate-predict
my_prediction = 0.5  # a guess written before the measurement: any number between 0 and 1 is a prediction
