"""``python -m workshop_lib.eval run --full``: regenerate data/eval/outcomes.jsonl (lessons 02 and 05).

Runs the seeded sample (50 items per task type) on the ``slm`` and ``llm`` roles at temperature 0,
five items per task type at a time (one model, then the other), each chunk followed by the small
model's extra sample on its math items (the cascade's self-consistency check) and, for the first
``--refine`` items per type, the large model's refinement of the small model's drafts. Each outcome is appended as soon as it is scored, so a
stopped run resumes where it was, and whatever finished is balanced across task types.
"""
import argparse

from . import data, runner
from .cache import OutcomeCache
from ..config import DATA_DIR
from ..runtime.endpoint import connect

CHUNK = 5
OUTCOMES = DATA_DIR / "eval" / "outcomes.jsonl"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.eval", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--full", action="store_true", help="50 items per task type into data/eval/outcomes.jsonl")
    parser.add_argument("--per-task", type=int, default=None, help="items per task type (default 50 with --full, else 4)")
    parser.add_argument("--refine", type=int, default=5, help="items per task type for draft-then-refine")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="requests in flight to one model (the embedded server batches its 4 slots)")
    parser.add_argument("--out", default=None, help="outcome file (default data/eval/outcomes.jsonl with --full)")
    args = parser.parse_args(argv)
    n = args.per_task or (50 if args.full else 4)
    out = args.out or (OUTCOMES if args.full else DATA_DIR.parent / "results" / "eval" / "outcomes.jsonl")
    lab, cache = connect(), OutcomeCache(out)
    models = {"slm": lab.slm, "llm": lab.llm}
    for start in range(0, n, CHUNK):  # a chunk of each task type at a time: a stopped run is still balanced
        chunk = data.sample_all(min(n, start + CHUNK))[len(data.TASKS) * start:]
        greedy = runner.evaluate(lab, chunk, models, cache, args.concurrency)
        math = [i for i in chunk if i.task == "math"]
        runner.self_consistency(lab, math, "slm", lab.slm, cache, concurrency=args.concurrency)
        ok = greedy[(greedy.role == "slm") & (greedy.status == "ok")]
        drafts = dict(zip(ok.item_id, ok.text))
        runner.draft_then_refine(lab, chunk[:len(data.TASKS) * max(0, args.refine - start)], drafts, lab.llm,
                                 cache, args.concurrency)
    print(f"{len(cache)} outcomes in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
