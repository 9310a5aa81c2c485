"""Loading base models: safetensors only, and a local base model that is missing fails at once, for good, naming
the path as expanded and what makes it."""

from __future__ import annotations

import pytest

from llmops.errors import BaseModelNotFound, PermanentError
from llmops.model import loading

FRESH = "${LLMOPS_HOME}/models/tiny-llama"  # the sample use case's base model, before make-base-model ran


def test_a_missing_local_base_model_is_a_permanent_error_naming_the_expanded_path(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path))
    expanded = tmp_path / "models" / "tiny-llama"
    for call in (lambda: loading.resolve_model_ref(FRESH), lambda: loading.load_tokenizer(FRESH),
                 lambda: loading.load_base(FRESH), lambda: loading.base_revision(FRESH, None)):
        with pytest.raises(BaseModelNotFound) as err:
            call()
        message = str(err.value)
        assert isinstance(err.value, PermanentError)
        assert f"{expanded} does not exist" in message and "${LLMOPS_HOME}" in message
        assert "python -m llmops.cli make-base-model" in message and "for a real model" in message


@pytest.mark.parametrize("ref", ["/no/such/model", "./models/none", "~/models/none", "$HOME/models/none",
                                 "models/a/b"])
def test_refs_that_can_only_be_paths_must_exist(ref):
    with pytest.raises(BaseModelNotFound, match="does not exist"):
        loading.resolve_model_ref(ref)


@pytest.mark.parametrize("ref", ["HuggingFaceTB/SmolLM2-135M-Instruct", "gpt2", "Qwen/Qwen2.5-0.5B"])
def test_hub_ids_pass_through(ref):
    assert not loading.is_local_path(ref)
    assert loading.resolve_model_ref(ref) == ref


def test_an_existing_folder_is_used(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LLMOPS_HOME", str(tiny_model_dir.parent))
    assert loading.resolve_model_ref(f"${{LLMOPS_HOME}}/{tiny_model_dir.name}") == str(tiny_model_dir)
    assert loading.base_revision(str(tiny_model_dir), "abc") == "abc"


def test_the_task_fails_without_retry(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from llmops.operators.common import fail_without_retry

    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path))
    with pytest.raises(AirflowFailException, match=r"BaseModelNotFound: .*tiny-llama does not exist"), \
            fail_without_retry():
        loading.load_tokenizer(FRESH)


def test_pickle_weights_are_refused(tmp_path, tiny_model_dir):
    import shutil

    import torch

    bad = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"x": Payload()}, bad / "pytorch_model.bin", _use_new_zipfile_serialization=True)
    with pytest.raises(OSError):
        loading.load_base(str(bad))
    assert not marker.exists(), "a pickle payload ran while loading weights"
