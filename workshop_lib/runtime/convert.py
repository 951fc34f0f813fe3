"""Convert a shipped GGUF model into an ONNX Runtime GenAI model for Foundry Local (taught in 01).

Foundry Local runs ONNX Runtime GenAI models, not GGUF. Two steps, both offline:
1. transformers reads the GGUF and dequantizes it into an ordinary Hugging Face folder;
2. onnxruntime-genai's model builder exports that to ONNX with int4 weights for the CPU.
The result is cached per alias; the heavy libraries (``requirements-convert.txt``) run in a
subprocess, ``python -m workshop_lib.runtime.convert ALIAS``, so the notebook's kernel stays small.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tqdm.auto import tqdm

from . import models, process
from ..config import cache_dir
from ..errors import WorkshopError

CONVERT_REQUIREMENTS = "requirements-convert.txt"
STAGE_MARK = "workshop-stage:"  # printed by the subprocess as each step ends, read by the parent
STAGES = ("GGUF read and dequantized", "exported to ONNX int4")


class ConversionError(WorkshopError):
    """The GGUF could not be turned into an ONNX Runtime GenAI model."""


def onnx_dir(alias: str) -> Path:
    return cache_dir() / "onnx" / f"{alias}-int4-cpu"


def ensure_onnx_model(alias: str) -> Path:
    """The converted model folder for ``alias``, converting it first if needed (about 2 minutes).
    An interrupt stops the converter too; what it left half-done is swept on the next run."""
    target = onnx_dir(alias)
    if (target / "genai_config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with process.exclusive(target.parent / f"{alias}.convert.lock", f"another conversion of {alias}"):
        if (target / "genai_config.json").exists():
            return target
        process.sweep_partials(target.parent)
        return _convert_in_subprocess(alias, target)


def _convert_in_subprocess(alias: str, target: Path) -> Path:
    log = target.parent / f"{alias}.convert.log"
    print(f"Converting {alias} to ONNX int4 (about 2 minutes, once); log: {log}", flush=True)
    with open(log, "w") as out, tqdm(total=len(STAGES), desc=f"convert {alias}") as bar:
        proc = subprocess.Popen([sys.executable, "-m", "workshop_lib.runtime.convert", alias], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        with process.reaped(proc):
            for line in proc.stdout:  # the builder is chatty: everything goes to the log, stages to the bar
                out.write(line)
                if line.startswith(STAGE_MARK):
                    bar.set_postfix_str(line.removeprefix(STAGE_MARK).strip())
                    bar.update(1)
            proc.wait()
    if proc.returncode != 0 or not (target / "genai_config.json").exists():
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-12:])
        raise ConversionError(f"Converting {alias} to ONNX failed (exit {proc.returncode}):\n{tail}",
                              f"pip install -r {CONVERT_REQUIREMENTS}, then run again; the log is {log}.")
    return target


def convert(alias: str) -> Path:
    """GGUF -> Hugging Face -> ONNX int4, built in a ``*.partial-*`` folder and renamed into place at the end."""
    spec = models.get_spec(alias)
    gguf = models.ensure_model(alias)
    target = onnx_dir(alias)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = process.partial_path(target)
    try:
        tmp.mkdir()
        hf_dir, out_dir = tmp / "hf", tmp / "onnx"
        gguf_to_hf(gguf, hf_dir)
        print(STAGE_MARK, STAGES[0], flush=True)
        hf_to_onnx(hf_dir, out_dir, tmp / "cache")
        print(STAGE_MARK, STAGES[1], flush=True)
        copy_chat_template(hf_dir, out_dir)
        (out_dir / "workshop_source.json").write_text(json.dumps({"alias": alias, "sha256": spec.sha256}))
        shutil.rmtree(target, ignore_errors=True)  # an unfinished folder from an older version
        os.replace(out_dir, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def gguf_to_hf(gguf: Path, hf_dir: Path) -> None:
    """Load the GGUF with transformers (dequantized to float32) and save it as a plain HF model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are plain floats now; a GGUF quantizer cannot be saved
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)


def builder_command(hf_dir, out_dir, cache) -> list:
    """The model builder's command line: Hugging Face folder in, ONNX int4 for the CPU out (lesson 01 shows it)."""
    return [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_dir), "-o", str(out_dir),
            "-p", "int4", "-e", "cpu", "-c", str(cache)]


def hf_to_onnx(hf_dir: Path, out_dir: Path, cache: Path) -> None:
    subprocess.run(builder_command(hf_dir, out_dir, cache), check=True)


def copy_chat_template(hf_dir: Path, out_dir: Path) -> None:
    """Foundry Local refuses a model without a chat template ("Empty chat template")."""
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        if (hf_dir / name).exists() and not (out_dir / name).exists():
            shutil.copy(hf_dir / name, out_dir / name)


if __name__ == "__main__":
    # Stopped by the parent (an interrupt in the notebook): exit through the `finally` that cleans up.
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(143))
    print(convert(sys.argv[1]))
