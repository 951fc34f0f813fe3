# EXERCISE 05-math-check
from workshop_lib.eval import scoring  # final_number: the number after the last "Answer:", else the last one


def check_math_reply(question, reply, second_reply):
    """Accept a reply that ends on a whole number (GSM8K's answers are whole numbers) which a second,
    independently sampled answer also ends on; escalate everything else."""
    number = scoring.final_number(reply)
    if number is None or number != int(number):
        return False
    return scoring.final_number(second_reply) == number
