"""Cheap verifiers a cascade runs on the small model's answer before deciding to escalate
(taught in 05_hybrid_routing, which shows each check as code). None of them sees the hidden reference
answer or the hidden tests: a check returns True (accept the small answer), False (escalate) or None
(no check applies)."""
from dataclasses import dataclass

import numpy as np

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


@dataclass
class CheckScore:
    """How a check did on answers whose correctness is known: of the ``wrong`` answers it ``caught`` some
    (escalated them), and of the ``right`` ones it escalated some for nothing (``escalated_right``)."""
    wrong: int
    caught: int
    right: int
    escalated_right: int

    @property
    def catch_rate(self) -> float:
        return self.caught / self.wrong if self.wrong else float("nan")

    @property
    def false_escalation_rate(self) -> float:
        return self.escalated_right / self.right if self.right else float("nan")

    @property
    def margin(self) -> float:
        """Catch rate minus false-escalation rate: 0 for "always accept", "always escalate" and a coin
        (each escalates right and wrong answers alike); 1 for a check that escalates exactly the wrong ones."""
        return self.catch_rate - self.false_escalation_rate


def score_check(accepted, right) -> CheckScore:
    """Score a check's verdicts (``accepted``: True kept the small answer; None counts as escalated, as
    in the cascade) against whether each small answer was ``right``."""
    accepted = np.array([a is True or a is np.True_ for a in accepted])
    right = np.asarray(right, bool)
    if accepted.shape != right.shape:
        raise ValueError(f"one verdict per answer: {accepted.shape} verdicts for {right.shape} answers")
    return CheckScore(int((~right).sum()), int((~right & ~accepted).sum()), int(right.sum()),
                      int((right & ~accepted).sum()))
