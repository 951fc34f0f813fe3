"""Running an evaluation sample through the models, scored and cached (taught in 02_model_comparison).

Every request goes through the benchmark module's ``stream_once``, so each outcome also carries its
TTFT, end-to-end latency and token counts, measured the way lesson 03 teaches.
"""
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from tqdm.auto import tqdm

from . import scoring
from .cache import OutcomeCache, outcome_key
from ..measure import bench

REFINE_PROMPT = ("{question}\n\n---\nA smaller assistant wrote this draft answer:\n\n{draft}\n\n---\n"
                 "Check the draft. If it is right, repeat it in the required format; if not, write a corrected "
                 "answer in the required format. Reply with the final answer only.")


def settings_of(item, variant: str = "greedy", temperature: float = 0.0, seed: int = None) -> dict:
    """What, besides model and messages, determines an answer (part of the cache key)."""
    found = {"max_tokens": item.max_tokens, "temperature": temperature, "variant": variant}
    return {**found, "seed": seed} if seed is not None else found


def refine_messages(item, draft: str) -> list:
    """Draft then refine: the large model sees the question and the small model's draft."""
    return [{"role": "user", "content": REFINE_PROMPT.format(question=item.prompt, draft=draft.strip())}]


class Job:
    """One request to make: an item, a role and model, the messages and settings, and its cache key."""

    def __init__(self, item, role, model, messages=None, variant="greedy", temperature=0.0, seed=None):
        self.item, self.role, self.model = item, role, model
        self.messages = messages or item.messages
        self.settings = settings_of(item, variant, temperature, seed)
        self.key = outcome_key(model, self.messages, self.settings)


def greedy_jobs(items, models: dict) -> list:
    """Each item on each ``{role: model}`` at temperature 0, one model's jobs after the other's."""
    return [Job(item, role, model) for role, model in models.items() for item in items]


def execute(job: Job, client, tokenizer=None, backend: str = "") -> dict:
    """Send one job, score the reply, return the outcome row (errors become rows, never exceptions)."""
    body = {"seed": job.settings["seed"]} if "seed" in job.settings else None  # servers that ignore it still sample
    row = bench.stream_once(client, job.model, job.messages, max_tokens=job.settings["max_tokens"],
                            temperature=job.settings["temperature"], tokenizer=tokenizer, extra_body=body)
    outcome = {"key": job.key, "task": job.item.task, "item_id": job.item.item_id, "role": job.role,
               "model": job.model, "backend": backend, **job.settings, "status": row["status"],
               "error": row.get("error", ""), "text": row.get("text", "")}
    for field in ("ttft_s", "e2e_s", "completion_tokens", "prompt_tokens", "token_source"):
        outcome[field] = row.get(field)
    if row["status"] == "ok":
        outcome["score"], outcome["detail"] = scoring.score(job.item.task, outcome["text"], job.item.reference)
        outcome["truncated"] = (outcome["completion_tokens"] or 0) >= job.settings["max_tokens"]
    return outcome


def run_jobs(target, jobs: list, cache: OutcomeCache, concurrency: int = 1, desc: str = "evaluating") -> pd.DataFrame:
    """Run the jobs not in ``cache`` yet (a rerun resumes), ``concurrency`` at a time; return every job's
    outcome, cached ones included. ``target`` is a ``Connection`` (``wl.connect()``)."""
    client = bench.client_of(target)
    plan = bench.plan_requests(target, sorted({j.model for j in jobs}), allow_cache=True, verbose=False)
    backend = getattr(target, "backend", "")
    todo = [j for j in jobs if cache.get(j.key) is None]
    fresh = {}

    def one(job):
        outcome = execute(job, client, plan.tokenizers.get(job.model), backend)
        outcome["concurrency"] = concurrency
        if outcome["status"] == "ok":
            cache.put(outcome)
        return job.key, outcome

    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc) as bar, \
            ThreadPoolExecutor(concurrency) as pool:
        for key, outcome in pool.map(one, todo):
            fresh[key] = outcome
            bar.update()
    return pd.DataFrame([fresh.get(j.key) or cache.get(j.key) for j in jobs])


def evaluate(target, items, models: dict, cache: OutcomeCache, concurrency: int = 1) -> pd.DataFrame:
    """Every item on every ``{role: model}`` at temperature 0: one row per (item, role), scored.

    One model at a time, its last request finished before the next model's first: two model processes
    computing at once on a few cores starve each other (measured on 2 cores: answers that take 30 s
    alone took 10 minutes), and servers that swap models, like llama-cpp-python's, reload once."""
    return pd.concat([run_jobs(target, greedy_jobs(items, {role: model}), cache, concurrency, f"evaluating {role}")
                      for role, model in models.items()], ignore_index=True)


def self_consistency(target, items, role: str, model: str, cache: OutcomeCache, samples: int = 1,
                     temperature: float = 0.7, concurrency: int = 1) -> pd.DataFrame:
    """Extra sampled answers (seeds 1..samples) of ``model``: a cheap verifier for math compares them
    with the greedy answer (agreement suggests the answer is right)."""
    jobs = [Job(item, role, model, variant="sample", temperature=temperature, seed=s)
            for item in items for s in range(1, samples + 1)]
    return run_jobs(target, jobs, cache, concurrency, desc=f"{role} samples")


def draft_then_refine(target, items, drafts: dict, model: str, cache: OutcomeCache,
                      concurrency: int = 1, role: str = "refine") -> pd.DataFrame:
    """The large ``model`` refines each small-model draft (``drafts``: item_id -> text)."""
    jobs = [Job(item, role, model, refine_messages(item, drafts[item.item_id]), variant="refine")
            for item in items if item.item_id in drafts]
    return run_jobs(target, jobs, cache, concurrency, desc="draft then refine")
