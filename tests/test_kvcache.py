"""The KV cache formula of lesson 03, against log lines in the format the pinned llama.cpp prints."""
import pytest

from workshop_lib.measure import kvcache

# What a router-mode llama-server log holds for one child (lines of the pinned llama-server at `-lv 4`,
# -c 16384 -np 4: 4 streams of 4096 cells), plus a second child that is still loading.
LOG = """\
srv  main: router listening on 127.0.0.1:8080
[51001] llama_model_loader: loaded meta data with 34 key-value pairs and 290 tensors from /m/qwen2.5-coder-0.5b.gguf (version GGUF V3 (latest))
[51001] print_info: n_layer               = 24
[51001] print_info: n_head                = 14
[51001] print_info: n_head_kv             = 2
[51001] print_info: n_embd_head_k         = 64
[51001] print_info: n_embd_head_v         = 64
[51002] llama_model_loader: loaded meta data with 34 key-value pairs and 338 tensors from /m/qwen2.5-coder-1.5b.gguf (version GGUF V3 (latest))
[51002] print_info: n_layer               = 28
[51001] llama_kv_cache:        CPU KV buffer size =   192.00 MiB
[51001] llama_kv_cache: size =  192.00 MiB (  4096 cells,  24 layers,  4/4 seqs), K (f16):   96.00 MiB, V (f16):   96.00 MiB
"""


def test_formula_is_layers_times_k_and_v_times_heads_times_dimension_times_bytes_times_tokens():
    assert kvcache.kv_cache_bytes(layers=24, kv_heads=2, head_dim=64, tokens=1) == 12288  # 12 KiB per token
    assert kvcache.kv_cache_bytes(24, 2, 64, 8192, bytes_per_value=1) == 48 * 2**20


def test_the_logged_cache_matches_the_formula_for_its_own_child_only():
    (cache,) = kvcache.logged_caches(LOG)  # the second child has not allocated its cache yet
    assert cache["model_file"] == "/m/qwen2.5-coder-0.5b.gguf" and cache["layers"] == 24
    assert cache["cells"] == 4 * 4096, "each of the 4 slots has its own stream of 4096 cells"
    assert cache["logged_bytes"] == pytest.approx(192 * 2**20) and cache["formula_bytes"] == cache["logged_bytes"]
    assert cache["per_token_bytes"] == 12288 and cache["seqs"] == 4


QWEN_05B = {"layers": 24, "kv_heads": 2, "head_dim_k": 64}  # what the pinned llama-server logs for the 0.5B


def test_what_fits_in_ram_leaves_the_model_file_out_and_an_8_bit_cache_nearly_doubles_it():
    fits = kvcache.fits_in_ram(model_bytes=1e9, shape=QWEN_05B, ram_gb=(4,), context=4096).set_index("kv_type")
    assert fits.loc["f16", "kv_kib_per_token"] == 12
    assert fits.loc["f16", "max_context_one_slot"] == int(3e9 // 12288)
    assert fits.loc["f16", "slots_of_4096"] == int(3e9 // (12288 * 4096))  # 59 slots of 4,096 tokens
    assert fits.loc["q8_0", "kv_kib_per_token"] == pytest.approx(12 * 34 / 64)
    assert 1.8 < fits.loc["q8_0", "max_context_one_slot"] / fits.loc["f16", "max_context_one_slot"] < 1.9


def test_a_ram_smaller_than_the_model_fits_no_context():
    fits = kvcache.fits_in_ram(model_bytes=3e9, shape=QWEN_05B, ram_gb=(2,))
    assert (fits["max_context_one_slot"] == 0).all() and (fits["slots_of_4096"] == 0).all()


def test_the_shape_read_from_the_packaged_file_is_what_the_server_logs():
    from conftest import REAL_CACHE
    from workshop_lib.measure import weights
    from workshop_lib.runtime import models

    path = REAL_CACHE / "models" / models.get_spec("qwen2.5-coder-0.5b").path.name  # read only, never written
    if not (weights.can_read() and path.exists()):
        pytest.skip("needs the 0.5B GGUF (python lab.py setup) and the gguf package (the convert extra)")
    assert kvcache.model_shape(path) == QWEN_05B
