"""Scoring retrieval and answers against data/rag/questions.json (taught in 04_rag)."""
import itertools
import json
import re
import time
from pathlib import Path

from ..config import DATA_DIR
from ..errors import DataFileError
from .answer import RETRIES
from .index import embed_query

QUESTIONS = DATA_DIR / "rag" / "questions.json"
FIELDS = ("id", "kind", "question", "answer", "must_contain", "answerable", "support")


def load_questions(path=QUESTIONS) -> list:
    """The evaluation questions, each checked for the fields the scores need."""
    try:
        items = json.loads(open(path, encoding="utf-8").read())["questions"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataFileError(f"{path} is not a readable question set ({exc}).",
                            "Restore it from git: git checkout -- data/rag/questions.json") from exc
    for item in items:
        missing = [f for f in FIELDS if f not in item]
        if missing or item["answerable"] != bool(item["support"]):
            raise DataFileError(f"Question {item.get('id', '?')} in {path} lacks {missing or 'consistent support'}.",
                                "Give every question the fields " + ", ".join(FIELDS) + ".")
    return items


def supports(chunk, item) -> bool:
    """Whether ``chunk`` lies in one of the sections that answer ``item`` (same file, heading inside)."""
    return any(chunk.path == s["path"] and s["heading"] in chunk.heading for s in item["support"])


def recall_at_k(hits, item) -> float:
    """Share of the item's supporting sections found among ``hits``."""
    found = [any(c.path == s["path"] and s["heading"] in c.heading for c, _ in hits) for s in item["support"]]
    return sum(found) / len(found)


def reciprocal_rank(hits, item) -> float:
    """1 / rank of the first supporting chunk, 0 when none was retrieved."""
    return next((1 / rank for rank, (c, _) in enumerate(hits, start=1) if supports(c, item)), 0.0)


def score_retrieval(items, retrieve, method: str, k: int = 5, index=None) -> list:
    """One row per answerable question: recall@k, reciprocal rank and seconds taken (the question's
    embedding included: the remembered vectors are forgotten before each timed query)."""
    rows = []
    embed_query("load the model before the clock starts")
    for item in (i for i in items if i["answerable"]):
        embed_query.cache_clear()
        start = time.perf_counter()
        hits = retrieve(item["question"], k=k, method=method, index=index)
        rows.append({"method": method, "id": item["id"], "k": k, "recall": recall_at_k(hits, item),
                     "rr": reciprocal_rank(hits, item), "seconds": time.perf_counter() - start})
    return rows


def contains_all(text: str, must_contain) -> bool:
    """Every entry of ``must_contain`` is in ``text`` (case-insensitive); a list entry means any of them."""
    low = text.lower()
    return all(any(s.lower() in low for s in ([g] if isinstance(g, str) else g)) for g in must_contain)


def citation_hits(result, item) -> list:
    """For each cited source: does it hold the support (a supporting section, or a required string)?"""
    cited = [result["hits"][n - 1][0] for n in result["citations"]]
    return [supports(c, item) or (bool(item["must_contain"]) and contains_all(c.text, item["must_contain"][:1]))
            for c in cited]


def score_answer(result, item) -> dict:
    """Correct (answerable, answered, all required strings), refusal right or wrong, cited sources right."""
    good = citation_hits(result, item)
    return {"id": item["id"], "answerable": item["answerable"], "refused": result["refused"],
            "correct": item["answerable"] and not result["refused"] and contains_all(result["text"], item["must_contain"]),
            "refusal_right": result["refused"] != item["answerable"], "cited": len(good), "cited_right": sum(good)}


def tune_threshold(best_scores: list, answerable: list, max_false_refusal: float = None) -> float:
    """The cosine cut that best separates answerable from unanswerable questions (balanced accuracy), or,
    with ``max_false_refusal``, the highest cut that refuses at most that share of answerable questions
    (the issue's goal is 15 %): balanced accuracy alone may refuse half the answerable ones."""
    def balanced(t):
        keep = [s >= t for s, a in zip(best_scores, answerable) if a]
        drop = [s < t for s, a in zip(best_scores, answerable) if not a]
        return (sum(keep) / max(len(keep), 1) + sum(drop) / max(len(drop), 1)) / 2

    def false_refusals(t):
        refused = [s < t for s, a in zip(best_scores, answerable) if a]
        return sum(refused) / max(len(refused), 1)
    candidates = sorted({round(s, 3) for s in best_scores})
    if max_false_refusal is not None:
        return max(t for t in candidates + [-1.0] if false_refusals(t) <= max_false_refusal)
    return max(candidates, key=lambda t: (balanced(t), -t))


JUDGE = ("You grade answers. Reply with one word, CORRECT or INCORRECT: does the candidate answer agree with "
         "the reference answer on the facts the question asks for?")


def verdict(reply: str):
    """The judge's verdict in ``reply``: True for CORRECT, False for INCORRECT, None when it says neither or
    both (unparseable). Only an explicit CORRECT counts: an empty or garbled reply is never a pass."""
    text = re.sub(r"\bNOT\s+CORRECT\b", "INCORRECT", (reply or "").upper())  # "Not correct." is a verdict too
    said = {"CORRECT", "INCORRECT"} & set(re.findall(r"[A-Z]+", text))
    return None if len(said) != 1 else said == {"CORRECT"}


def judge(client, model: str, item, text: str):
    """LLM-as-judge: the larger model compares an answer with the reference (a second opinion only).
    True, False, or None when its reply names no verdict (count those, never treat them as correct)."""
    reply = client.with_options(max_retries=RETRIES).chat.completions.create(
        model=model, temperature=0, max_tokens=5, messages=[
            {"role": "system", "content": JUDGE},
            {"role": "user", "content": f"Question: {item['question']}\nReference: {item['answer']}\nCandidate: {text}"}])
    return verdict(reply.choices[0].message.content)


HELDOUT = DATA_DIR / "rag" / "heldout.json"


def run_item(client, model: str, item, k: int = 5, max_tokens: int = 300, index=None, style=None) -> dict:
    """Everything the refusal stages and the answer scores need for one question and one model: the best
    cosine, the model's own verdict on the sources, and its answer (always asked, so each stage can be
    judged on every question; the cosine gate is applied afterwards, in ``refusals``). With ``style``
    (``capabilities.structured_style``, "" for a Sources line) the app's answer, cited by construction, is
    asked too: its scores are the row's ``app`` entry (see ``app_scores``)."""
    from .answer import answer
    from .refusal import sources_answer, unsupported_terms
    from .search import retrieve
    hits = retrieve(item["question"], k=k, method="hybrid", index=index)
    started = time.perf_counter()
    said = sources_answer(client, model, item["question"], hits)
    asked = time.perf_counter()
    result = answer(client, model, item["question"], k=k, threshold=-2.0, max_tokens=max_tokens, index=index)
    row = {**score_answer(result, item), "model": model, "kind": item["kind"], "split": item.get("split", ""),
           "best": max(score for _, score in hits), "verdict": said, "verdict_seconds": asked - started,
           "answer_seconds": time.perf_counter() - asked, "text": result["text"], "citations": result["citations"],
           "model_refused": result["refused"], "unsupported": unsupported_terms(result["text"], hits)}
    return row if style is None else {**row, "app": app_answer(client, model, item, hits, style, max_tokens)}


def app_answer(client, model: str, item, hits, style: str, max_tokens: int) -> dict:
    """The Chainlit app's answer to ``item`` from ``hits``: cited by construction (``CitedAnswer``), its
    own ``answerable`` verdict, then the unsupported-terms stage; scored like ``score_answer``."""
    from .answer import CitedAnswer
    from .refusal import withhold_unsupported
    started = time.perf_counter()
    reply = CitedAnswer(client, model, item["question"], hits, style, max_tokens)
    for _piece in reply:
        pass
    said = reply.result()
    checked = withhold_unsupported(said, hits)
    return {**score_answer(checked, item), "style": style, "seconds": time.perf_counter() - started,
            "model_refused": said["refused"], "unsupported": checked["unsupported"], "text": said["text"],
            "citations": said["citations"]}


STAGES = {  # each refuses when the cosine gate or the model itself does, and when ...
    "cosine gate": lambda row: False,
    "+ verdict": lambda row: row["verdict"] is False,
    "+ terms": lambda row: bool(row["unsupported"]),
    "+ verdict + terms": lambda row: row["verdict"] is False or bool(row["unsupported"]),
}


PIPELINE = "+ verdict + terms"  # the stage refusal.grounded_answer uses (USE_VERDICT, USE_TERMS)


def refusals(rows, threshold: float, stage: str) -> list:
    """For each row, whether the pipeline with ``stage`` (a key of ``STAGES``) refuses."""
    return [row["best"] < threshold or row["model_refused"] or STAGES[stage](row) for row in rows]


def stage_table(rows, threshold: float) -> list:
    """Per stage: answerable questions wrongly refused, in-domain unanswerable ones refused, off-topic ones
    refused, and answers right among all answerable, each as count, n and 95 % Wilson interval."""
    from ..measure.stats import wilson
    groups = {"false refusals (answerable)": lambda r: r["answerable"],
              "refused (in-domain unanswerable)": lambda r: not r["answerable"] and "in-domain" in r["kind"],
              "refused (off-topic unanswerable)": lambda r: not r["answerable"] and "in-domain" not in r["kind"]}
    table = []
    for stage in STAGES:
        refused = refusals(rows, threshold, stage)
        line = {"stage": stage}
        for name, keep in groups.items():
            picked = [x for x, r in zip(refused, rows) if keep(r)]
            line[name] = (sum(picked), len(picked), *wilson(sum(picked), len(picked)))
        right = [r["correct"] and not x for x, r in zip(refused, rows) if r["answerable"]]
        line["correct (answerable)"] = (sum(right), len(right), *wilson(sum(right), len(right)))
        table.append(line)
    return table


def pipeline_outcomes(rows, threshold: float, pipeline: str) -> list:
    """Per row, what the ``pipeline`` did: "lesson" (``refusal.grounded_answer``: the cosine gate, the
    verdict call, a plain answer, the terms stage) or "app" (the cosine gate, then ``app_answer``)."""
    if pipeline == "lesson":
        return [{**row, "refused": gone} for row, gone in zip(rows, refusals(rows, threshold, PIPELINE))]
    return [{**row["app"], "answerable": row["answerable"], "kind": row["kind"],
             "refused": row["best"] < threshold or row["app"]["refused"]} for row in rows if "app" in row]


def goal_table(rows, threshold: float) -> list:
    """The issue's goals per model and pipeline, each as (count, n, 95 % Wilson low, high): answered
    questions citing a source, citations of answered answerable questions that support the answer,
    correct answers among answerable questions, in-domain unanswerable ones refused, answerable ones
    wrongly refused."""
    from ..measure.stats import wilson

    def share(k, n):
        return (k, n, *wilson(k, n))
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for pipeline in ("lesson", "app"):
            done = pipeline_outcomes([r for r in rows if r["model"] == model], threshold, pipeline)
            if not done:
                continue
            answered = [r for r in done if not r["refused"]]
            cited = [r for r in answered if r["answerable"]]
            table.append({"model": model, "pipeline": pipeline,
                          "answered citing a source": share(sum(r["cited"] > 0 for r in answered), len(answered)),
                          "citations supporting": share(sum(r["cited_right"] for r in cited), sum(r["cited"] for r in cited)),
                          "correct (answerable)": share(sum(r["correct"] and not r["refused"] for r in done if r["answerable"]),
                                                        sum(r["answerable"] for r in done)),
                          "refused (in-domain unanswerable)": share(
                              sum(r["refused"] for r in done if "in-domain" in r["kind"] and not r["answerable"]),
                              sum("in-domain" in r["kind"] and not r["answerable"] for r in done)),
                          "false refusals (answerable)": share(sum(r["refused"] for r in done if r["answerable"]),
                                                               sum(r["answerable"] for r in done))})
    return table


SHIPPED_RUN = DATA_DIR / "rag" / "full_run.jsonl"  # the course's full run (this module's CLI), read by lesson 04

GOALS = {  # the course's targets for each figure of ``goal_table``: (at least or at most, share)
    "answered citing a source": ("at least", 0.90),
    "citations supporting": ("at least", 0.75),
    "correct (answerable)": ("at least", 0.50),
    "refused (in-domain unanswerable)": ("at least", 0.70),
    "false refusals (answerable)": ("at most", 0.15),
}


def goal_frame(rows, threshold: float) -> "pd.DataFrame":
    """``goal_table`` as one line per model, pipeline and goal, with the target and a verdict the interval
    supports: "met" or "missed" when the whole 95 % interval is on one side of the target, "undecided"
    when it straddles it (too few questions to tell)."""
    import pandas as pd
    lines = []
    for line in goal_table(rows, threshold):
        for goal, (side, target) in GOALS.items():
            k, n, low, high = line[goal]
            good, bad = (low >= target, high < target) if side == "at least" else (high <= target, low > target)
            lines.append({"model": line["model"], "pipeline": line["pipeline"], "goal": goal, "count": k, "n": n,
                          "share": k / n if n else float("nan"), "low": low, "high": high, "target": f"{side} {target:.0%}",
                          "verdict": "no data" if not n else "met" if good else "missed" if bad else "undecided"})
    return pd.DataFrame(lines)


def load_rows(path) -> list:
    """The rows a full run wrote, one JSON object per line (a cut-off last line is skipped)."""
    rows = []
    for line in open(path, encoding="utf-8"):
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def interleave_kinds(items: list) -> list:
    """The items taking turns by split and kind (answerable, in-domain, off-topic), so a run cut short
    covers each kind of each set."""
    groups = {}
    for item in items:
        kind = "answerable" if item["answerable"] else "in-domain" in item["kind"]
        groups.setdefault((item.get("split"), kind), []).append(item)
    return [item for turn in itertools.zip_longest(*groups.values()) for item in turn if item]


def full_run(out, models: list, sets=("questions", "heldout"), splits=("test", "held-out"), k: int = 5) -> None:
    """Answer every question of ``sets`` in ``splits`` with each model, one JSON line per (question, model)
    appended to ``out``; rows already there are kept, so an interrupted run resumes. Each question goes to
    every model before the next, so a run cut short still holds paired rows."""
    from tqdm.auto import tqdm
    from ..runtime.capabilities import structured_style
    from ..runtime.endpoint import connect
    lab = connect(verbose=False)
    style = structured_style(lab)
    items = interleave_kinds([i for name in sets for i in load_questions(QUESTIONS if name == "questions" else HELDOUT)
                              if i.get("split") in splits])
    done = {(r["id"], r["model"]) for r in load_rows(out)} if Path(out).exists() else set()
    models = [lab.model(m) if m in ("slm", "llm") else m for m in models]
    for item in tqdm(items, desc="full run"):
        for model in (m for m in models if (item["id"], m) not in done):
            row = run_item(lab.client, model, item, k=k, style=style)
            with open(out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


def print_goals(rows, threshold: float) -> None:
    """The goal table as text, one line per model and pipeline: count/n (percent, Wilson interval)."""
    for line in goal_table(rows, threshold):
        print(f"{line['model']} · {line['pipeline']} pipeline ({sum(1 for r in rows if r['model'] == line['model'])} questions)")
        for name, (k, n, low, high) in ((key, value) for key, value in line.items() if isinstance(value, tuple)):
            print(f"  {name}: {k}/{n}" + (f" ({k / n:.0%}, {low:.0%} to {high:.0%})" if n else ""))


if __name__ == "__main__":  # python -m workshop_lib.rag.evaluate OUT.jsonl slm llm  (--report OUT.jsonl: scores only)
    import sys
    from .answer import THRESHOLD
    if sys.argv[1] != "--report":
        full_run(sys.argv[1], sys.argv[2:] or ["slm", "llm"])
    print_goals(load_rows(sys.argv[-1] if sys.argv[1] == "--report" else sys.argv[1]), THRESHOLD)
