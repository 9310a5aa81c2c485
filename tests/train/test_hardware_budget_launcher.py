"""Precision/attention/QLoRA planning, the budget check, and the multi-GPU launcher's plumbing (CPU only)."""

from __future__ import annotations

import sys

import pytest

from llmops.config import TrainingBudget, TrainingConfig
from llmops.errors import ConfigError
from llmops.model import loading
from llmops.prompts import PromptTemplate
from llmops.train import budget, hardware, launcher
from llmops.train.lora import finetune


def test_auto_plan_on_cpu_and_on_a_gpu():
    cpu = hardware.plan_for(TrainingConfig(), cuda=False, bf16_ok=False, flash_attn=False)
    assert (cpu.device, cpu.precision, cpu.attention) == ("cpu", "fp32", "sdpa")
    h100 = hardware.plan_for(TrainingConfig(), cuda=True, bf16_ok=True, flash_attn=True)
    assert (h100.device, h100.precision, h100.attention) == ("cuda", "bf16", "flash_attention_2")
    t4 = hardware.plan_for(TrainingConfig(), cuda=True, bf16_ok=False, flash_attn=False)
    assert (t4.precision, t4.attention) == ("fp16", "sdpa")


@pytest.mark.parametrize(("settings", "field"), [
    ({"quantization": "4bit"}, "training.quantization"),
    ({"precision": "fp16"}, "training.precision"),
    ({"attention": "flash_attention_2"}, "training.attention"),
])
def test_gpu_only_settings_are_refused_on_cpu_naming_the_field(settings, field):
    with pytest.raises(ConfigError, match=field):
        hardware.plan_for(TrainingConfig(**settings), cuda=False, bf16_ok=False, flash_attn=False)


def test_qlora_without_bitsandbytes_names_the_package():
    pytest.importorskip("torch")
    if __import__("importlib").util.find_spec("bitsandbytes"):
        pytest.skip("bitsandbytes is installed")
    with pytest.raises(ConfigError, match="bitsandbytes"):
        hardware.plan_for(TrainingConfig(quantization="4bit"), cuda=True, bf16_ok=True, flash_attn=False)


def test_lora_flops_and_mfu():
    shape = budget.ModelShape(params=1_000, matmul_params=800, layers=2, attention_width=16)
    # 4N + 12 * layers * width * s per token, times s tokens
    assert budget.flops_per_example(shape, 10) == (4 * 800 + 12 * 2 * 16 * 10) * 10
    assert budget.mfu(989e12 * 0.5, 1.0) == pytest.approx(0.5)


def test_model_shape_without_loading_weights(tiny_model_dir):
    shape = budget.ModelShape.from_pretrained_config(str(tiny_model_dir))
    model, _ = loading.load_base(str(tiny_model_dir))
    assert shape == budget.ModelShape.of(model)
    assert shape.params == sum(p.numel() for p in model.parameters())
    assert shape.matmul_params == shape.params  # tied embeddings: the output projection uses them


def test_over_budget_fails_before_training_with_the_estimate(tiny_model_dir, sample_rows, tmp_path):
    training = TrainingConfig(max_train_rows=32, budget=TrainingBudget(max_tokens=100))
    with pytest.raises(budget.BudgetExceeded, match=r"training.budget.max_tokens: [\d,]+ tokens estimated > 100"):
        finetune(sample_rows, base_model=str(tiny_model_dir), revision=None, training=training, out_dir=tmp_path,
                 template=PromptTemplate(path="inline", text="Q: {prompt}\nA: "), metadata={})
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "adapter").exists()
    est = {"tokens": 10, "gpu_hours": 2.5, "flops": 1e18, "assumed_mfu": 0.35, "peak_tflops": 989.0, "params": 10**9,
           "epochs": 1.0}
    with pytest.raises(budget.BudgetExceeded, match="2.5 GPU-hours estimated > 1.0"):
        budget.check(est, max_gpu_hours=1.0, max_tokens=None)
    budget.check(est, max_gpu_hours=3.0, max_tokens=10)


def test_torchrun_command_and_child_environment():
    cmd = launcher.torchrun_command(4, "/runs/x/train_job.json", python="/venv/bin/python")
    assert cmd == ["/venv/bin/python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
                   "-m", "llmops.train.worker", "/runs/x/train_job.json"]
    env = launcher.child_env({"PYTHONPATH": "/extra"})
    assert env["PYTHONPATH"].split(":")[0] == str(launcher.PLUGINS_DIR) and env["PYTHONPATH"].endswith("/extra")
    assert (launcher.PLUGINS_DIR / "llmops" / "train" / "worker.py").exists()


def test_child_output_is_streamed_into_the_log_and_a_failure_carries_its_tail(caplog):
    code = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with caplog.at_level("INFO", logger="llmops.train.launcher"):
        with pytest.raises(launcher.TrainingProcessFailed, match="exited with code 3") as err:
            launcher.stream([sys.executable, "-c", code], launcher.child_env())
    assert "[train] line 0" in caplog.text and "[train] line 99" in caplog.text
    assert "line 99" in str(err.value) and "line 0\n" not in str(err.value)  # only the tail


@pytest.mark.slow  # two torchrun processes on CPU (gloo): ~20 s on 2 cores
def test_data_parallel_launch_through_torchrun_streams_logs_and_returns_the_result(tiny_model_dir, sample_rows,
                                                                                   tmp_path, caplog, monkeypatch):
    # the GPU path's launcher, run on CPU: 2 processes x batch 8 over 64 rows = 4 steps
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    training = TrainingConfig(batch_size=8, max_seq_len=64, max_train_rows=64, logging_steps=2)
    with caplog.at_level("INFO", logger="llmops.train.launcher"):
        result = launcher.train(sample_rows, base_model=str(tiny_model_dir), revision=None, training=training,
                                template=PromptTemplate(path="inline", text="Q: {prompt}\nA: "), out_dir=tmp_path,
                                metadata={"k": "v"}, gpus=2)
    assert result["world_size"] == 2 and result["steps"] == 4
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert "--nproc_per_node=2" in caplog.text and "[train] " in caplog.text and "rank0" in caplog.text
    assert "step 4/4" in caplog.text
