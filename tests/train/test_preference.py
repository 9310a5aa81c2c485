"""DPO and KTO through real TRL on the tiny model, on top of a champion adapter: the chosen-over-rejected
log-probability margin on the training pairs rises; TRL sees the tokens supervised training sees; a run stopped
after a checkpoint resumes there and ends with the same adapter as an uninterrupted run; a rerun is reused; DPO
goes through the launcher's torchrun path as supervised tuning does."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from transformers import TrainerCallback

from llmops.config import TrainingConfig
from llmops.model import encoding, loading
from llmops.prompts import PromptTemplate
from llmops.train import checkpoints
from llmops.train.preference import logprob_margin, preference_tune, training_rows

TEMPLATE = PromptTemplate(path="inline", text="### Question:\n{prompt}\n\n### Answer:\n")
# 16 pairs, batch 4: 4 steps per epoch, 2 epochs (the method's own, not the supervised 5) = 8 steps; a
# checkpoint every 4
OWN = {"learning_rate": 2e-3, "epochs": 2, "beta": 0.1}
TRAINING = TrainingConfig(epochs=5, learning_rate=0.5, batch_size=4, max_seq_len=64, dpo=OWN, kto=OWN,
                          checkpoint_every_steps=4, keep_checkpoints=2, logging_steps=4, queue="default",
                          pool="default_pool")


@pytest.fixture(scope="module")
def pairs(sample_rows) -> pd.DataFrame:
    """Each question's documented answer chosen over another question's answer."""
    rows = sample_rows.head(16).reset_index(drop=True)
    return pd.DataFrame({"key": [f"k{i}" for i in range(len(rows))], "kind": "pair", "prompt": rows["prompt"],
                         "completion": rows["response"], "rejected": rows["response"].shift(1, fill_value=rows[
                             "response"].iloc[-1]), "label": True})


class StopAfterCheckpoint(TrainerCallback):
    """Fails the run once checkpoint ``step`` is saved and marked complete, as a killed worker would stop."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt(f"stopped after checkpoint-{state.global_step}")


def _tune(method, pairs, tiny_model_dir, adapters, out: Path, **kw):
    return preference_tune(pairs, method=method, base_model=str(tiny_model_dir), revision=None, template=TEMPLATE,
                           training=TRAINING, out_dir=out, metadata={"snapshot_id": "pref-test"},
                           reference_adapter=adapters["champion"], reference_version="1", **kw)


def test_trl_sees_the_tokens_training_sees(pairs, tiny_model_dir):
    tokenizer = loading.load_tokenizer(str(tiny_model_dir))
    row = training_rows(pairs.head(1), "dpo", tokenizer, TEMPLATE)[0]
    prompt_ids = tokenizer(row["prompt"])["input_ids"]
    chosen_ids = tokenizer(row["prompt"] + row["chosen"])["input_ids"]
    trained = encoding.encode(tokenizer, TEMPLATE, pairs["prompt"].iloc[0], pairs["completion"].iloc[0], 512)
    assert chosen_ids == trained["input_ids"] and chosen_ids[:len(prompt_ids)] == prompt_ids


def test_dpo_raises_the_margin_and_resumes_after_a_stop(pairs, tiny_model_dir, adapters, tmp_path):
    import torch
    from safetensors.torch import load_file

    before = logprob_margin(str(tiny_model_dir), adapters["champion"], TEMPLATE, pairs, TRAINING.max_seq_len)
    done = _tune("dpo", pairs, tiny_model_dir, adapters, tmp_path / "straight")
    assert done["method"] == "dpo" and done["steps"] == 8 and done["reference"]["version"] == "1"
    after = logprob_margin(str(tiny_model_dir), done["adapter_dir"], TEMPLATE, pairs, TRAINING.max_seq_len)
    assert after > before + 1.0, (before, after)
    meta = loading.adapter_metadata(done["adapter_dir"])
    assert meta["training_method"] == "dpo" and meta["reference_version"] == "1"
    assert not (Path(done["adapter_dir"]) / "ref").exists()  # TRL's frozen reference copy is not saved

    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        _tune("dpo", pairs, tiny_model_dir, adapters, out, callbacks=[StopAfterCheckpoint(4)])
    assert [checkpoints.step_of(p) for p in checkpoints.list_checkpoints(out / "checkpoints")] == [4]
    resumed = _tune("dpo", pairs, tiny_model_dir, adapters, out)
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 8
    a, b = load_file(f"{done['adapter_dir']}/adapter_model.safetensors"), load_file(
        f"{resumed['adapter_dir']}/adapter_model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=1e-5), f"{name} differs after resume"
    assert _tune("dpo", pairs, tiny_model_dir, adapters, out)["reused"] is True


def test_kto_raises_the_margin(pairs, tiny_model_dir, adapters, tmp_path):
    before = logprob_margin(str(tiny_model_dir), adapters["champion"], TEMPLATE, pairs, TRAINING.max_seq_len)
    done = _tune("kto", pairs, tiny_model_dir, adapters, tmp_path / "kto")
    assert done["method"] == "kto" and done["train_rows"] == 2 * len(pairs)
    after = logprob_margin(str(tiny_model_dir), done["adapter_dir"], TEMPLATE, pairs, TRAINING.max_seq_len)
    assert after > before + 1.0, (before, after)


def test_the_worker_rebuilds_the_method_the_launcher_wrote(pairs, adapters, tmp_path):
    from llmops.train import launcher, worker
    from llmops.train.lora import SFT
    from llmops.train.preference import DPO, KTO

    dpo = DPO(adapters["champion"], "1")
    job_file = launcher.write_job(tmp_path, pairs, TEMPLATE, {"base_model": "m", "training": TRAINING}, dpo)
    job = json.loads(job_file.read_text())
    rebuilt = worker.method_from_job(job["method"])
    assert type(rebuilt) is DPO and rebuilt.reference == dpo.reference and rebuilt.reference_version == "1"
    assert list(pd.read_parquet(job["rows"]).columns) == list(DPO.columns)  # a preference frame, as given
    assert type(worker.method_from_job({"name": "kto", "reference_adapter": None, "reference_version": None})) is KTO
    assert type(worker.method_from_job(None)) is SFT  # a job file written before methods were named


@pytest.mark.slow  # two torchrun processes on CPU (gloo) running TRL's DPOTrainer: ~40 s on 2 cores
def test_dpo_goes_through_the_launchers_torchrun_path(pairs, tiny_model_dir, adapters, tmp_path, caplog,
                                                      monkeypatch):
    from llmops.train import launcher
    from llmops.train.preference import DPO

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # one epoch of the method's own (training.dpo), as a preference run reads it
    training = TRAINING.model_copy(update={"dpo": TRAINING.dpo.model_copy(update={"epochs": 1}),
                                           "checkpoint_every_steps": 0})
    with caplog.at_level("INFO", logger="llmops.train.launcher"):
        result = launcher.train(pairs, method=DPO(adapters["champion"], "1"), base_model=str(tiny_model_dir),
                                revision=None, training=training, template=TEMPLATE, out_dir=tmp_path,
                                metadata={"snapshot_id": "pref-test"}, gpus=2)
    # 16 pairs over 2 processes x batch 4: 2 steps
    assert result["method"] == "dpo" and result["world_size"] == 2 and result["steps"] == 2
    assert "--nproc_per_node=2" in caplog.text and "rank0" in caplog.text
    meta = loading.adapter_metadata(result["adapter_dir"])
    assert meta["training_method"] == "dpo" and meta["reference_version"] == "1"
    assert not (Path(result["adapter_dir"]) / "ref").exists()
