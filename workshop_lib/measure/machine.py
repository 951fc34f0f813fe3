"""What this machine can do, measured, and where a decoder sits against it (taught in 03_benchmarking).

- ``memory_bandwidth_gbs``: every core copies its own large array at the same time (numpy releases
  the GIL while it copies), summed: close to what the memory delivers to all cores together.
- ``matmul_gflops``: a float32 matrix product on all cores (numpy's BLAS), a yardstick for the
  arithmetic the cores can do.
- ``roofline``: a decoder's ceilings from those two figures. One decoding step reads every weight once
  (about the model file's bytes) whatever the number of streams it advances, and does about
  2 x parameters FLOPs *per stream*. So batching N streams multiplies the arithmetic by N and leaves
  the bytes almost unchanged: a decoder bound by memory gains nearly N times, one bound by compute
  gains little.

Both figures are yardsticks for this job, not its exact ceilings (llama.cpp's kernels work on packed integer
blocks, not float32 matrices, and can beat a float32 product), and both depend on the machine and on what
else runs on it.
"""
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd


def memory_bandwidth_gbs(megabytes_per_thread: int = 128, threads: int = None, repeats: int = 3) -> dict:
    """Memory copy speed with ``threads`` threads (default: one per core) copying at once, in GB/s
    (bytes read plus bytes written, best of ``repeats``), and with one thread for comparison."""
    threads = threads or os.cpu_count() or 1
    sources = [np.ones(megabytes_per_thread * 2**20 // 8) for _ in range(threads)]
    targets = [np.empty_like(s) for s in sources]
    one = _best_copy_gbs(sources[:1], targets[:1], repeats)
    many = _best_copy_gbs(sources, targets, repeats)
    return {"threads": threads, "all_cores_gbs": many, "one_thread_gbs": one}


def _best_copy_gbs(sources: list, targets: list, repeats: int) -> float:
    """Best GB/s of all copies started together (a barrier) and timed until the last one ends."""
    barrier = threading.Barrier(len(sources) + 1)

    def copy(pair):
        barrier.wait()
        np.copyto(pair[1], pair[0])

    best = float("inf")
    with ThreadPoolExecutor(len(sources)) as pool:
        for _ in range(repeats):
            futures = [pool.submit(copy, pair) for pair in zip(sources, targets)]
            barrier.wait()
            start = time.perf_counter()
            for future in futures:
                future.result()
            best = min(best, time.perf_counter() - start)
    return 2 * sum(s.nbytes for s in sources) / best / 1e9


def matmul_gflops(n: int = 1024, repeats: int = 3) -> float:
    """GFLOP/s of an ``n x n`` float32 matrix product (2 n^3 FLOPs), best of ``repeats``, on the
    threads numpy's BLAS uses (all cores by default)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b  # untimed: the BLAS starts its threads
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def roofline(model_bytes: float, parameters: float, bandwidth_gbs: float, gflops: float,
             streams=(1, 2, 4, 8)) -> pd.DataFrame:
    """Decode ceilings for each batch of ``streams``: tokens/s all streams together could reach if
    memory were the only limit (one weight read per step, shared) and if arithmetic were
    (2 x parameters FLOPs per token). ``bound`` names the lower ceiling."""
    rows = []
    for n in streams:
        memory_tps = n * bandwidth_gbs * 1e9 / model_bytes
        compute_tps = gflops * 1e9 / (2 * parameters)
        rows.append({"streams": n, "flops_per_byte": 2 * parameters * n / model_bytes,
                     "memory_ceiling_tps": memory_tps, "compute_ceiling_tps": compute_tps,
                     "ceiling_tps": min(memory_tps, compute_tps),
                     "bound": "memory" if memory_tps < compute_tps else "compute"})
    return pd.DataFrame(rows)


def stream_read_gbs(model_bytes: float, decode_tps: float) -> float:
    """GB/s one stream pulls from memory: each token's step reads the weights (``model_bytes``) once."""
    return model_bytes * decode_tps / 1e9


def place_measurements(sweep: pd.DataFrame, model_bytes: float, parameters: float) -> pd.DataFrame:
    """A sweep's measured aggregate tokens/s as roofline points: FLOPs per byte read and GFLOP/s done
    (2 x parameters per token), next to the bytes per second the steps read (one file per step)."""
    out = sweep[["concurrency", "aggregate_tps", "per_stream_tps"]].copy()
    out["flops_per_byte"] = 2 * parameters * out["concurrency"] / model_bytes
    out["gflops"] = out["aggregate_tps"] * 2 * parameters / 1e9
    # each step advances every stream by one token and reads the weights once
    out["weight_gbs"] = out["aggregate_tps"] / out["concurrency"] * model_bytes / 1e9
    return out
