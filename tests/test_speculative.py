"""Speculative decoding's arithmetic and command lines (measure/speculative.py); no server needed."""
import subprocess
import sys

import pandas as pd
import pytest

from conftest import needs_server
from workshop_lib.measure import speculative
from workshop_lib.runtime import process, server


def row(r, task, variant, tps, text="same", drafted=0, accepted=0, error=""):
    return {"round": r, "task": task, "variant": variant, "decode_tps": tps, "text": text, "draft_n": drafted,
            "draft_n_accepted": accepted, "error": error}


def test_speedup_is_the_median_of_ratios_paired_by_round():
    # round 1 is twice as slow for both variants (a busy machine): pairing cancels it, pooled medians would not
    rows = pd.DataFrame([row(0, "edit", "alone", 30), row(0, "edit", "n-gram", 60, drafted=100, accepted=75),
                         row(1, "edit", "alone", 15), row(1, "edit", "n-gram", 30, drafted=100, accepted=70),
                         row(2, "edit", "alone", 20), row(2, "edit", "n-gram", 45, drafted=50, accepted=40)])
    line = speculative.summarize(rows).set_index("variant").loc["n-gram"]
    assert line["speedup"] == 2.0 and line["decode_tps"] == 45
    assert (line["speedup_low"], line["speedup_high"]) == (2.0, 2.25)  # the pairs' range, not a pooled one
    assert (line["drafted"], line["accepted"]) == (250, 185) and abs(line["acceptance"] - 185 / 250) < 1e-12


def test_a_changed_text_is_flagged_and_a_failed_request_is_left_out():
    rows = pd.DataFrame([row(0, "prose", "alone", 30, "a"), row(0, "prose", "draft model", 20, "b", 10, 3),
                         row(1, "prose", "alone", 30, "a"), row(1, "prose", "draft model", None, "", error="boom")])
    line = speculative.summarize(rows).set_index("variant").loc["draft model"]
    assert line["same_text"] is not None and not line["same_text"] and line["n"] == 1 and abs(line["speedup"] - 2 / 3) < 1e-12


def test_no_drafts_means_no_acceptance_rate_not_zero():
    rows = pd.DataFrame([row(0, "code", "alone", 30), row(0, "code", "kv q8_0", 29)])
    assert speculative.summarize(rows).set_index("variant").loc["kv q8_0", "acceptance"] is None


def test_variants_use_the_pinned_builds_flags_and_bind_to_loopback():
    flags = speculative.variant_flags("/m/draft.gguf")
    assert flags["draft model"] == ["-md", "/m/draft.gguf", "--spec-type", "draft-simple"]
    assert flags["n-gram"] == ["--spec-type", "ngram-simple"] and flags["alone"] == []
    assert "draft model" not in speculative.variant_flags(None)
    command = speculative.server_command("llama-server", "/m/t.gguf", "t", 9000, 2, flags["kv q8_0"])
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[-4:] == ["-ctk", "q8_0", "-ctv", "q8_0"]
    assert command[command.index("-np") + 1] == "1"


def test_the_edit_task_contains_the_module_it_asks_to_repeat():
    assert speculative.EDITED_MODULE in speculative.TASKS["edit"][-1]["content"]


@pytest.mark.server
@needs_server
def test_ngram_lookup_keeps_the_text_and_reports_its_drafts_and_leaves_no_server_behind():
    # the small model on two throwaway servers: alone and with n-gram lookup, on the edit that repeats its input
    result = speculative.measure("qwen2.5-coder-0.5b", tasks={"edit": speculative.TASKS["edit"]}, rounds=1,
                                 max_tokens=48, variants=["alone", "n-gram"])
    summary = result["summary"].set_index("variant")
    assert (result["rows"]["error"] == "").all(), result["rows"]["error"].tolist()
    assert bool(summary.loc["n-gram", "same_text"]) and summary.loc["n-gram", "drafted"] > 0
    assert summary.loc["alone", "drafted"] == 0
    assert not list(process.records_home().glob(f"{server.HELPER_PREFIX}spec-*.json"))


def test_the_cli_export_keeps_every_request_and_the_summary(tmp_path):
    rows = pd.DataFrame([row(0, "edit", "alone", 30), row(0, "edit", "n-gram", 60, drafted=100, accepted=75)])
    result = {"rows": rows, "summary": speculative.summarize(rows), "memory": pd.DataFrame([{"variant": "alone", "kv_mib": 48.0}])}
    report = speculative.export(tmp_path / "out", result, {"rounds": 1})
    assert len(pd.read_csv(tmp_path / "out" / "rows.csv")) == 2
    assert pd.read_csv(tmp_path / "out" / "summary.csv").set_index("variant").loc["n-gram", "speedup"] == 2.0
    assert "| edit | n-gram |" in report.read_text() and "rounds=1" in report.read_text()


def test_every_variant_takes_every_place_in_turn():
    class Recorder:
        def __init__(self, name, seen):
            self.name, self.seen = name, seen

        def ask(self, messages, max_tokens):
            self.seen.append(self.name)
            return {"text": "t", "decode_tps": 1.0, "draft_n": 0, "draft_n_accepted": 0}
    seen = []
    servers = {name: Recorder(name, seen) for name in ("alone", "n-gram", "kv q8_0", "draft model")}
    speculative.interleaved_runs(servers, {"code": [], "prose": []}, rounds=2)
    firsts = [seen[i] for i in range(0, len(seen), 4)]  # who ran first in each task of each round
    assert sorted(firsts) == sorted(servers) and all(sorted(seen[i:i + 4]) == sorted(servers) for i in range(0, 16, 4))


def test_memory_reports_the_logged_cache_beside_the_formula(tmp_path):
    from test_kvcache import LOG
    variant = speculative.VariantServer("qwen2.5-coder-0.5b", [], "alone")
    variant.home = tmp_path
    (tmp_path / "llama-server.log").write_text(LOG)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    variant.record = type("Record", (), {"pid": gone.pid})()  # a process that has ended: no memory, no error
    memory = variant.memory()
    assert (memory["kv_type"], memory["kv_cells"]) == ("f16", 16384)
    assert memory["kv_mib"] == memory["formula_mib"] == 192.0 and memory["rss_mb"] is None
