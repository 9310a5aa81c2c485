"""Exports of a registered version on a real MLflow store with the real converter: merged safetensors, GGUF f16
and q8_0 with their Modelfiles, tags with content hash and size; failures register nothing; re-runs are idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops import registry
from llmops.content_hash import digest, file_sha256
from llmops.errors import ExportError
from llmops.export import publish


def _downloaded(uri: str, dst: Path) -> Path:
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))


def test_merged_and_gguf_exports_are_registered_with_hash_and_size(registered, gguf_tools, tmp_path):
    cfg = registered["cfg"]
    result = publish.export_version(cfg, "1")
    assert list(result["exports"]) == ["merged", "gguf-f16", "gguf-q8_0"]
    tags = registry.version_info(cfg.model_name, "1")["tags"]
    for name, entry in result["exports"].items():
        assert entry["status"] == "exported"
        assert tags[f"export.{name}.sha256"] == entry["sha256"]
        assert tags[f"export.{name}.artifact_uri"] == f"runs:/{registered['run_id']}/export/{name}"
        got = _downloaded(entry["artifact_uri"], tmp_path / name)
        assert int(tags[f"export.{name}.bytes"]) == sum(p.stat().st_size for p in got.rglob("*") if p.is_file())
        if name == "merged":
            assert digest(got) == entry["sha256"]
            assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in got.iterdir()}
            assert not list(got.glob("*.bin")) and not list(got.glob("adapter_*"))
        else:
            gguf_file = next(got.glob("*.gguf"))
            assert file_sha256(gguf_file) == entry["sha256"]
            assert (got / "Modelfile").read_text().startswith("# exp_qa-lora version 1")
    from llmops.model.gguf import read_header

    assert read_header(next((tmp_path / "gguf-q8_0").rglob("*.gguf"))) == ("llama", "Q8_0")
    assert read_header(next((tmp_path / "gguf-f16").rglob("*.gguf"))) == ("llama", "F16")


def test_merged_weights_equal_base_plus_lora_in_the_base_dtype(registered, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    from llmops.model import loading

    publish.export_version(registered["cfg"], "1", kinds=["merged"])
    merged = publish.export_dir(registered["cfg"].model_name, "1") / "merged"
    base, _ = loading.load_base(str(tiny_model_dir))
    peft_model = loading.load_adapter(base, registry.download_adapter(
        registry.version_info(registered["cfg"].model_name, "1"), merged.parent / "check"))
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    reloaded, _ = loading.load_base(str(merged))
    weights = load_file(merged / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}  # the tiny base is saved in float32
    assert torch.allclose(peft_model(ids).logits, reloaded(ids).logits, atol=1e-5)
    assert json.loads((merged / "llmops_merged.json").read_text())["version"] == "1"


def test_a_rerun_registers_nothing_new(registered, gguf_tools):
    cfg = registered["cfg"]
    first = publish.export_version(cfg, "1", kinds=["merged"])
    again = publish.export_version(cfg, "1", kinds=["merged"])
    assert again["exports"]["merged"]["status"] == "already registered"
    assert again["exports"]["merged"]["sha256"] == first["exports"]["merged"]["sha256"]
    assert "build" not in again["seconds"]


def test_a_converter_failure_registers_nothing_and_says_why(registered, gguf_tools, monkeypatch):
    from llmops.export import merge

    real = merge.merge_adapter

    def unsupported_architecture(*args, **kwargs):  # what a model llama.cpp cannot convert looks like to it
        out = real(*args, **kwargs)
        config = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps({**config, "architectures": ["NoSuchForCausalLM"]}))
        return out

    monkeypatch.setattr(merge, "merge_adapter", unsupported_architecture)
    with pytest.raises(ExportError, match=r"llama.cpp's converter failed:(.|\n)*NoSuchForCausalLM") as err:
        publish.export_version(registered["cfg"], "1")
    assert "Nothing was registered for exp_qa-lora version 1" in str(err.value)
    tags = registry.version_info(registered["cfg"].model_name, "1")["tags"]
    assert not [k for k in tags if k.startswith("export.")]  # merged was built, but nothing is registered
    export = publish.export_dir(registered["cfg"].model_name, "1")
    assert not list(export.glob("gguf-*/*.gguf")) and not list(export.rglob(".*.tmp*"))


def test_a_missing_converter_is_refused_with_how_to_install_it(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_GGUF_TOOLS", str(tmp_path / "nowhere"))
    with pytest.raises(ExportError, match=r"not installed in .*nowhere.*make gguf-tools"):
        publish.export_version(registered["cfg"], "1", kinds=["gguf"])
    assert not [k for k in registry.version_info(registered["cfg"].model_name, "1")["tags"] if k.startswith("export.")]


def test_unknown_kind_and_out_type_are_refused(registered):
    with pytest.raises(ExportError, match="unknown kind"):
        publish.export_version(registered["cfg"], "1", kinds=["onnx"])
    from llmops.export import converter

    with pytest.raises(ExportError, match="out type 'q4_k'"):
        converter.convert("x", "y.gguf", "q4_k")


def test_a_full_disk_registers_nothing_and_says_where(registered, monkeypatch):
    import errno

    from llmops.export import merge

    def disk_full(base, tokenizer, adapter, out_dir, provenance):
        raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "model.safetensors"))

    monkeypatch.setattr(merge, "merge_adapter", disk_full)
    with pytest.raises(ExportError, match=r"cannot write under .*v1: No space left on device .*model.safetensors"):
        publish.export_version(registered["cfg"], "1", kinds=["merged"])
    assert not [k for k in registry.version_info(registered["cfg"].model_name, "1")["tags"] if k.startswith("export.")]
