"""Which torch build an install takes, and from which index: the one rule for every venv and the Docker image.

Runs before any venv exists (``python3 plugins/llmops/torch_build.py``), so it uses the standard library only.

- No NVIDIA GPU (``nvidia-smi -L`` lists none): the CPU build, from PyTorch's CPU wheel index where it answers
  within a few seconds; otherwise the default index, with a one-line note on stderr saying what that gives.
- A CUDA host (``nvidia-smi -L`` lists a GPU): the CUDA build from the default index (PyPI's Linux torch is CUDA),
  or from ``TORCH_CUDA_INDEX`` where that is set and answers (the Docker image: ``.../whl/cu128``).
- Overrides: ``TORCH_BUILD=cpu|cuda`` picks the build whatever the host; ``TORCH_INDEX=<url>`` names the index
  outright (``TORCH_INDEX=default``: the default index, no probe).

    python3 plugins/llmops/torch_build.py              # the pip arguments for `pip install torch==...` (maybe none)
    python3 plugins/llmops/torch_build.py --build      # cpu | cuda, no probe (the venv cache key takes it)
    .venv/bin/python plugins/llmops/torch_build.py --installed   # after install: version, CPU or CUDA build
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_TIMEOUT_S = 5.0
BUILDS = ("cpu", "cuda")
OVERRIDE = "override with TORCH_INDEX=<url> or TORCH_BUILD=cpu|cuda (e.g. TORCH_INDEX=<url> make install)"


class TorchBuildError(ValueError):
    """A bad TORCH_BUILD value."""


@dataclass(frozen=True)
class Choice:
    build: str  # cpu | cuda: what the install asks for
    index: str | None  # None: the default index (pip's own configuration)
    note: str  # one line: what comes from where, and why

    def pip_args(self) -> list[str]:
        return ["--index-url", self.index] if self.index else []


def has_nvidia_gpu(run: Callable = subprocess.run) -> bool:
    """True when ``nvidia-smi -L`` answers and lists a GPU (within 10 s)."""
    if not shutil.which("nvidia-smi"):
        return False
    try:
        out = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when ``url`` answers an HTTP request within ``timeout`` seconds (pip's proxy variables apply)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + "/torch/", method="HEAD"),
                                    timeout=timeout) as r:
            return r.status < 400
    except Exception:  # noqa: BLE001 - DNS, refused, timeout, TLS, HTTP error: all mean "not usable now"
        return False


def choose(env: Mapping[str, str], *, gpu: Callable[[], bool], probe: Callable[[str], bool],
           system: str = "Linux") -> Choice:
    """The build and index for this host. ``gpu`` and ``probe`` are called only when the decision needs them."""
    wanted = (env.get("TORCH_BUILD") or "auto").strip().lower()
    if wanted not in (*BUILDS, "auto"):
        raise TorchBuildError(f"TORCH_BUILD={wanted!r}: expected cpu, cuda or auto")
    build = wanted if wanted in BUILDS else ("cuda" if gpu() else "cpu")
    why = f"TORCH_BUILD={build}" if wanted in BUILDS else (
        "nvidia-smi lists a GPU" if build == "cuda" else "no NVIDIA GPU found")
    index = (env.get("TORCH_INDEX") or "").strip()
    if index:
        if index == "default":
            return Choice(build, None, f"torch: the default index (TORCH_INDEX=default; {why})")
        return Choice(build, index, f"torch: from {index} (TORCH_INDEX)")
    if build == "cuda":
        cuda_index = (env.get("TORCH_CUDA_INDEX") or "").strip()
        if cuda_index and probe(cuda_index):
            return Choice(build, cuda_index, f"torch: CUDA build from {cuda_index} ({why})")
        if cuda_index:
            return Choice(build, None, f"torch: {cuda_index} is not reachable ({PROBE_TIMEOUT_S:.0f}s probe): the "
                                       f"CUDA build from the default index instead; {OVERRIDE}")
        return Choice(build, None, f"torch: CUDA build from the default index ({why}); {OVERRIDE}")
    if system != "Linux":  # PyPI's torch for macOS and Windows is the CPU build
        return Choice(build, None, f"torch: CPU build from the default index ({system}; {why})")
    if probe(CPU_INDEX):
        return Choice(build, CPU_INDEX, f"torch: CPU build from {CPU_INDEX} ({why})")
    return Choice(build, None, f"torch: {CPU_INDEX} is not reachable ({PROBE_TIMEOUT_S:.0f}s probe): the default "
                               "index instead, which gives the CPU build only from a local CPU wheel in pip's "
                               f"configuration (find-links), else the CUDA build (several GB); {OVERRIDE}")


def installed() -> str:
    """One line about the torch importable here: version, CPU or CUDA build, and whether a GPU is visible."""
    try:
        import torch
    except ImportError as e:
        return f"torch: not importable ({e})"
    if not torch.version.cuda:
        return f"torch {torch.__version__}: CPU build"
    seen = torch.cuda.is_available()
    return f"torch {torch.__version__}: CUDA {torch.version.cuda} build, " + (
        f"GPU {torch.cuda.get_device_name(0)}" if seen else "no GPU visible (runs on the CPU)")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--installed"]:
        print(installed())
        return 0
    try:
        if argv[:1] == ["--build"]:
            print(choose(os.environ, gpu=has_nvidia_gpu, probe=lambda _url: False).build)
            return 0
        choice = choose(os.environ, gpu=has_nvidia_gpu, probe=reachable, system=platform.system())
    except TorchBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(choice.note, file=sys.stderr)
    print(" ".join(choice.pip_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
