"""Reading a GGUF file's tensor types (lesson 01): a file written with the gguf package itself."""
import importlib.util

import numpy as np
import pytest

from workshop_lib.measure import weights

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gguf") is None,
                                reason="needs the gguf package: pip install -r requirements-convert.txt")


@pytest.fixture
def small_gguf(tmp_path):
    """A GGUF with a float32 embedding table of 4 x 256 and a Q8_0 tensor of 2 x 256 (32-value blocks of 34 bytes)."""
    import gguf

    path = tmp_path / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.ones((4, 256), dtype=np.float32))
    quantized = gguf.quants.quantize(np.ones((2, 256), dtype=np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.w", quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_parameters_are_the_sum_of_the_tensors_elements(small_gguf):
    table = weights.tensor_table(small_gguf)
    assert weights.parameter_count(table) == 4 * 256 + 2 * 256
    assert set(table["row"]) == {256}


def test_each_type_gets_its_share_of_bytes_and_its_bits_per_weight(small_gguf):
    shares = weights.type_shares(weights.tensor_table(small_gguf))
    assert shares.loc["Q8_0", "bits_per_weight"] == pytest.approx(8.5)  # 34 bytes per 32 weights
    assert shares.loc["F32", "bits_per_weight"] == pytest.approx(32)
    assert shares.loc["F32", "share_of_bytes"] == pytest.approx(4096 / (4096 + 544))
    assert shares["share_of_weights"].sum() == pytest.approx(1)


def test_a_decoding_step_looks_the_embedding_up_and_multiplies_the_rest(small_gguf):
    footprint = weights.decode_footprint(weights.tensor_table(small_gguf))
    assert footprint == {"bytes_per_step": 544, "weights_per_token": 512, "embedding_bytes": 4096}
