"""The machine yardsticks and the decode roofline of lesson 03."""
import threading

import numpy as np
import pandas as pd
import pytest

from workshop_lib.measure import machine


def test_bandwidth_copies_on_every_core_at_once(monkeypatch):
    running, peak, lock, real_copy = [0], [0], threading.Lock(), np.copyto

    def counting_copy(target, source):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        real_copy(target, source)
        threading.Event().wait(0.05)  # long enough for the other threads' copies to overlap
        with lock:
            running[0] -= 1
    monkeypatch.setattr(machine.np, "copyto", counting_copy)
    result = machine.memory_bandwidth_gbs(megabytes_per_thread=4, threads=3, repeats=1)
    assert result["threads"] == 3 and peak[0] == 3, "the copies must run at the same time"
    assert result["all_cores_gbs"] > 0 and result["one_thread_gbs"] > 0


def test_bandwidth_counts_bytes_read_and_written(monkeypatch):
    ticks = iter([0.0, 0.5])  # each copy takes half a second on this clock
    monkeypatch.setattr(machine.time, "perf_counter", lambda: next(ticks))
    gbs = machine._best_copy_gbs([np.ones(2**20 // 8)], [np.empty(2**20 // 8)], repeats=1)
    assert gbs == pytest.approx(2 * 2**20 / 0.5 / 1e9)


def test_matmul_gflops_is_positive_and_quick():
    assert machine.matmul_gflops(n=128, repeats=1) > 0


def test_roofline_memory_bound_alone_compute_bound_batched():
    # a 0.5 GB file of 0.5 billion weights, 20 GB/s and 60 GFLOP/s
    table = machine.roofline(0.5e9, 0.5e9, bandwidth_gbs=20, gflops=60, streams=(1, 2, 4))
    assert table["memory_ceiling_tps"].tolist() == pytest.approx([40, 80, 160])  # N streams share one read
    assert table["compute_ceiling_tps"].tolist() == pytest.approx([60, 60, 60])  # 1 GFLOP per token
    assert table["bound"].tolist() == ["memory", "compute", "compute"]
    assert table["ceiling_tps"].tolist() == pytest.approx([40, 60, 60])
    assert table["flops_per_byte"].tolist() == pytest.approx([2, 4, 8])


def test_measured_points_read_the_weights_once_per_step():
    sweep = pd.DataFrame({"concurrency": [1, 4], "aggregate_tps": [40.0, 60.0], "per_stream_tps": [40.0, 15.0]})
    points = machine.place_measurements(sweep, model_bytes=0.5e9, parameters=0.5e9)
    assert points["weight_gbs"].tolist() == pytest.approx([20, 7.5])
    assert points["gflops"].tolist() == pytest.approx([40, 60])
