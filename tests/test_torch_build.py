"""The torch build rule (plugins/llmops/torch_build.py): which build and index a host gets, and the overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmops import torch_build
from llmops.torch_build import CPU_INDEX, TorchBuildError, choose

SCRIPT = Path(torch_build.__file__)


def _never(*_args):
    raise AssertionError("not needed for this decision")


def _probe(answers: dict[str, bool], asked: list[str]):
    def probe(url: str) -> bool:
        asked.append(url)
        return answers.get(url, False)
    return probe


def test_a_host_without_a_gpu_gets_the_cpu_build_from_the_cpu_index_where_it_answers():
    asked: list[str] = []
    c = choose({}, gpu=lambda: False, probe=_probe({CPU_INDEX: True}, asked))
    assert (c.build, c.index, asked) == ("cpu", CPU_INDEX, [CPU_INDEX])
    assert c.pip_args() == ["--index-url", CPU_INDEX]
    assert "CPU build" in c.note and "no NVIDIA GPU" in c.note


def test_an_unreachable_cpu_index_falls_back_to_the_default_index_saying_what_comes_and_how_to_override():
    c = choose({}, gpu=lambda: False, probe=lambda _url: False)
    assert (c.build, c.index, c.pip_args()) == ("cpu", None, [])
    assert CPU_INDEX in c.note and "not reachable" in c.note and "CUDA build" in c.note
    assert "TORCH_INDEX=<url>" in c.note and "TORCH_BUILD=cpu|cuda" in c.note
    assert "\n" not in c.note


def test_a_cuda_host_gets_the_cuda_build_from_the_default_index_without_probing():
    c = choose({}, gpu=lambda: True, probe=_never)
    assert (c.build, c.index) == ("cuda", None)
    assert "nvidia-smi lists a GPU" in c.note


def test_a_cuda_variant_index_is_used_where_it_answers_else_the_default_index():
    cu = "https://download.pytorch.org/whl/cu128"
    env = {"TORCH_BUILD": "cuda", "TORCH_CUDA_INDEX": cu}
    assert choose(env, gpu=_never, probe=lambda url: url == cu).index == cu
    c = choose(env, gpu=_never, probe=lambda _url: False)
    assert c.index is None and cu in c.note and "not reachable" in c.note


@pytest.mark.parametrize("gpu", [True, False])
def test_torch_build_overrides_the_host_in_both_directions(gpu):
    assert choose({"TORCH_BUILD": "cpu"}, gpu=_never, probe=lambda _url: True).index == CPU_INDEX
    c = choose({"TORCH_BUILD": "CUDA"}, gpu=_never, probe=_never)
    assert (c.build, c.index) == ("cuda", None) and "TORCH_BUILD=cuda" in c.note
    assert choose({"TORCH_BUILD": "auto"}, gpu=lambda: gpu, probe=lambda _url: False).build == (
        "cuda" if gpu else "cpu")


def test_torch_index_names_the_index_outright_and_default_means_the_default_index():
    c = choose({"TORCH_INDEX": "https://mirror.example/whl/cpu"}, gpu=lambda: False, probe=_never)
    assert c.pip_args() == ["--index-url", "https://mirror.example/whl/cpu"] and c.build == "cpu"
    c = choose({"TORCH_INDEX": "default", "TORCH_BUILD": "cuda"}, gpu=_never, probe=_never)
    assert (c.build, c.index) == ("cuda", None)


def test_macos_and_windows_take_the_default_index_which_is_the_cpu_build_there():
    c = choose({}, gpu=lambda: False, probe=_never, system="Darwin")
    assert (c.build, c.index) == ("cpu", None) and "Darwin" in c.note


def test_a_bad_torch_build_is_an_error_naming_the_value():
    with pytest.raises(TorchBuildError, match="TORCH_BUILD='gpu': expected cpu, cuda or auto"):
        choose({"TORCH_BUILD": "gpu"}, gpu=_never, probe=_never)


def test_no_gpu_when_nvidia_smi_is_missing_or_lists_nothing(monkeypatch):
    monkeypatch.setattr(torch_build.shutil, "which", lambda _name: None)
    assert torch_build.has_nvidia_gpu(run=_never) is False
    monkeypatch.setattr(torch_build.shutil, "which", lambda _name: "/usr/bin/nvidia-smi")

    def answers(stdout: str, rc: int = 0):
        return lambda *a, **k: subprocess.CompletedProcess(a, rc, stdout=stdout, stderr="")
    assert torch_build.has_nvidia_gpu(run=answers("GPU 0: NVIDIA H100 (UUID: GPU-1)\n")) is True
    assert torch_build.has_nvidia_gpu(run=answers("", rc=9)) is False  # driver not loaded


def test_the_script_runs_on_a_bare_python_and_prints_pip_arguments_or_nothing():
    """The Makefile calls it with the system Python before any venv exists: no project imports, fast offline."""
    env = {"PATH": "/usr/bin:/bin", "TORCH_INDEX": "https://mirror.example/simple", "TORCH_BUILD": "cpu"}
    out = subprocess.run([sys.executable, "-I", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["--index-url", "https://mirror.example/simple"]
    assert out.stderr.strip() == "torch: from https://mirror.example/simple (TORCH_INDEX)"
    out = subprocess.run([sys.executable, "-I", str(SCRIPT), "--build"], env={**env, "TORCH_BUILD": "cuda"},
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "cuda"
    bad = subprocess.run([sys.executable, "-I", str(SCRIPT)], env={**env, "TORCH_BUILD": "gpu"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "TORCH_BUILD='gpu'" in bad.stderr and bad.stdout == ""


def test_installed_names_this_venvs_torch_build():
    import torch

    line = torch_build.installed()
    assert line.startswith(f"torch {torch.__version__}: ")
    assert ("CPU build" in line) == (torch.version.cuda is None)
