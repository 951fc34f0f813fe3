"""Cheap verifiers a cascade runs on the small model's answer before deciding to escalate
(taught in 05_hybrid_routing). None of them sees the hidden reference answer or hidden tests."""
from ..eval import scoring


def verify(task: str, text: str, reference: dict, samples=(), truncated: bool = False):
    """True (accept the small answer), False (escalate) or None (no check applies).

    - code: run the docstring's ``>>>`` examples against the answer (in a subprocess);
    - math: self-consistency: the greedy answer's number agrees with every extra sampled answer;
    - knowledge: format: the reply names exactly one option letter;
    - instructions: format: a non-empty reply that was not cut off at the token limit."""
    if task == "code":
        return scoring.visible_tests_pass(text, reference)
    if task == "math":
        got = scoring.final_number(text)
        return got is not None and bool(samples) and all(scoring.final_number(s) == got for s in samples)
    if task == "knowledge":
        letters = {c for c in "ABCD" if f"{c}." in text or text.strip().upper().startswith(c)}
        return scoring.answer_letter(text) is not None and len(text.strip()) <= 40 and len(letters) <= 1
    if task == "instructions":
        return bool(text.strip()) and not truncated
    return None
