"""Cheap verifiers a cascade runs on the small model's answer before deciding to escalate
(taught in 05_hybrid_routing, which shows each check as code). None of them sees the hidden reference
answer or the hidden tests: a check returns True (accept the small answer), False (escalate) or None
(no check applies)."""
from ..eval import scoring


def check_code(text: str, reference: dict):
    """Run the docstring's ``>>>`` examples (what a user can see) against the reply, in a subprocess;
    None when the prompt has no examples."""
    return scoring.visible_tests_pass(text, reference)


def check_math(text: str, samples) -> bool:
    """Self-consistency: the reply's final number agrees with every extra sampled answer's."""
    got = scoring.final_number(text)
    return got is not None and bool(samples) and all(scoring.final_number(s) == got for s in samples)


def check_knowledge(text: str) -> bool:
    """Format: a short reply that names exactly one option letter (a long one argues instead of choosing)."""
    letters = {c for c in "ABCD" if f"{c}." in text or text.strip().upper().startswith(c)}
    return scoring.answer_letter(text) is not None and len(text.strip()) <= 40 and len(letters) <= 1


def check_instructions(text: str, truncated: bool) -> bool:
    """Format: a non-empty reply that was not cut off at the token limit."""
    return bool(text.strip()) and not truncated


def verify(task: str, text: str, reference: dict, samples=(), truncated: bool = False):
    """The cascade's check for ``task``: True (accept the small answer), False (escalate) or None."""
    if task == "code":
        return check_code(text, reference)
    if task == "math":
        return check_math(text, samples)
    if task == "knowledge":
        return check_knowledge(text)
    if task == "instructions":
        return check_instructions(text, truncated)
    return None
