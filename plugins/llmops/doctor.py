"""``python -m llmops.cli doctor`` (``make doctor``): what this host has against what each make target needs.

One function per check, each returning a :class:`Result` (``ok`` / ``warn`` / ``fail``, a one-line finding and what
to do about it). ``fail`` is kept for what stops ``make demo`` (the command then exits 1); whatever only makes an
optional target or test tier skip is a ``warn``. Nothing here changes the host.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmops import paths
from llmops.embedded import embedded_env

GiB = 1024**3
STATUSES = ("ok", "warn", "fail")
# Free disk (GiB) each target writes beyond the venvs it makes, the venvs it needs, and the RAM (GiB) it wants.
# Venv sizes measured on Linux x86_64 with the CPU torch (du, 2026-12-07); compose images and RAM are rounded up
# from the runs in docs/testing.md and docs/install.md.
VENV_GIB = {"main": 2.8, "vllm": 3.4, "gguf": 1.2}
VENV_DIRS = {"main": ".venv", "vllm": ".venv-vllm", "gguf": ".venv-gguf"}
NEEDS = {  # target: (venvs, other disk GiB, RAM GiB)
    "demo": (("main",), 1.0, 3),
    "test-fast": (("main",), 1.0, 4),
    "test": (("main", "vllm", "gguf"), 12.0, 12),
    "vllm-tools": (("vllm",), 0.5, 6),
    "compose": (("main",), 10.0, 8),
}
TIMEOUT_S = 10


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # ok | warn | fail (fail: `make demo` cannot run)
    finding: str  # one line
    fix: str = ""  # what to do, for warn and fail

    def lines(self) -> list[str]:
        out = [f"{self.status:<5} {self.name:<14} {self.finding}"]
        if self.status != "ok" and self.fix:
            out.append(f"{'':<5} {'':<14} -> {self.fix}")
        return out


def _run(argv: Sequence[str], timeout: float = TIMEOUT_S) -> tuple[int, str]:
    """(exit code, first line of output); 127 when the program is missing, 124 when it timed out."""
    if not shutil.which(argv[0]):
        return 127, f"{argv[0]} not found"
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"no answer in {timeout:.0f}s"
    except OSError as e:
        return 126, str(e)
    text = (out.stdout.strip() or out.stderr.strip()).splitlines()
    return out.returncode, text[0].strip() if text else ""


def check_python(version: Sequence[int] = tuple(sys.version_info[:3])) -> Result:
    found = ".".join(map(str, version)) + f" at {sys.executable}"
    if tuple(version[:2]) < (3, 10):
        return Result("python", "fail", found, "Airflow 3 needs Python 3.10 or newer: PYTHON=python3.11 make install")
    if tuple(version[:2]) != (3, 11):
        return Result("python", "warn", found + " (constraints.txt was made on 3.11)",
                      "if an install fails to resolve: PYTHON=python3.11 make install")
    return Result("python", "ok", found)


def has_nvidia_gpu() -> bool:
    from llmops.torch_build import has_nvidia_gpu as probe

    return probe()


def check_torch(gpu: Callable[[], bool] = has_nvidia_gpu) -> Result:
    try:
        import torch
    except ImportError as e:
        return Result("torch", "fail", f"not importable in {sys.executable} ({e})", "make install")
    from llmops.torch_build import installed

    line = installed().removeprefix("torch ")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.version.cuda is None and gpu():
        return Result("torch", "warn", f"{line}, but nvidia-smi lists a GPU: training runs on the CPU",
                      "rm .venv && TORCH_BUILD=cuda make install")
    if torch.version.cuda is not None and device == "cpu":
        return Result("torch", "warn", f"{line} (several GB of CUDA libraries that this host cannot use)",
                      "rm .venv && TORCH_BUILD=cpu make install (the CPU build is a fraction of the size)")
    return Result("torch", "ok", f"{line}; device {device}")


def _venvs_missing(names: Sequence[str], root: Path) -> list[str]:
    return [n for n in names if not (root / VENV_DIRS[n] / ".installed").exists()]


def need_gib(target: str, root: Path = paths.PROJECT_ROOT) -> float:
    """Free disk ``target`` still needs here: what it writes plus the venvs it would have to make."""
    venvs, other, _ram = NEEDS[target]
    return other + sum(VENV_GIB[n] for n in _venvs_missing(venvs, root))


def check_disk(root: Path = paths.PROJECT_ROOT, free_gib: float | None = None) -> Result:
    if free_gib is None:
        cache = Path(os.environ.get("LLMOPS_VENV_CACHE") or Path.home() / ".cache" / "llmops-airflow" / "venvs")
        places = [root, next(p for p in (cache, *cache.parents) if p.exists())]  # where the venvs go too
        free_gib = min(shutil.disk_usage(p).free for p in places) / GiB
    short = [t for t in NEEDS if need_gib(t, root) > free_gib]
    needs = ", ".join(f"{t} {need_gib(t, root):.1f}" for t in NEEDS)
    finding = f"{free_gib:.1f} GiB free; needed here (GiB): {needs}"
    if "demo" in short:
        return Result("disk", "fail", finding, f"free {need_gib('demo', root) - free_gib:.1f} GiB more for make demo"
                      " (rm -r ~/.cache/llmops-airflow/venvs drops old venvs; make clean the demo's outputs)")
    if short:
        return Result("disk", "warn", finding, f"too little for {', '.join(short)}: free some space first")
    return Result("disk", "ok", finding)


def memory_gib(meminfo: Path = Path("/proc/meminfo")) -> tuple[float, float]:
    """(total, available) RAM in GiB."""
    try:
        fields = {k: int(v.split()[0]) * 1024 for k, v in
                  (line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)}
        return fields["MemTotal"] / GiB, fields.get("MemAvailable", fields.get("MemFree", 0)) / GiB
    except (OSError, KeyError, ValueError):
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES") / GiB, page * os.sysconf("SC_AVPHYS_PAGES") / GiB


def check_ram(total_gib: float | None = None, available_gib: float | None = None) -> Result:
    if total_gib is None or available_gib is None:
        total_gib, available_gib = memory_gib()
    needs = ", ".join(f"{t} {ram}" for t, (_v, _d, ram) in NEEDS.items())
    finding = f"{total_gib:.1f} GiB, {available_gib:.1f} available; wanted (GiB): {needs}"
    if total_gib < NEEDS["demo"][2]:
        return Result("ram", "fail", finding, f"make demo wants about {NEEDS['demo'][2]} GiB: use a bigger host")
    short = [t for t, (_v, _d, ram) in NEEDS.items() if available_gib < ram]
    if short:
        return Result("ram", "warn", finding, f"too little free now for {', '.join(short)}: stop other work first, "
                                              "or expect swapping and missed test timeouts")
    return Result("ram", "ok", finding)


def check_gpu() -> Result:
    rc, line = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if rc == 127:
        return Result("gpu", "ok", "no NVIDIA GPU (nvidia-smi not found): training and serving run on the CPU")
    if rc != 0:
        return Result("gpu", "warn", f"nvidia-smi fails ({line}): training runs on the CPU",
                      "install or load the NVIDIA driver so that `nvidia-smi` answers (GPU workers only)")
    name, driver, memory = ([p.strip() for p in line.split(",")] + ["?", "?"])[:3]
    return Result("gpu", "ok", f"{name}, driver {driver}, {memory}")


def check_compose() -> Result:
    fix = ("make compose-test skips: install Docker Engine with the compose plugin (or Podman with docker-compose) "
           "so that `docker compose version` and `docker info` answer")
    rc, line = _run(["docker", "compose", "version"])
    if rc != 0:
        return Result("compose", "warn", f"`docker compose version`: {line or f'exit {rc}'}", fix)
    version = line
    rc, line = _run(["docker", "info", "--format", "{{.ServerVersion}}"])
    if rc != 0:
        return Result("compose", "warn", f"{version}, but `docker info` does not answer ({line or f'exit {rc}'})", fix)
    return Result("compose", "ok", f"{version}; engine {line}")


def check_program(name: str, path: str | None, purpose: str, package: str) -> Result:
    """A program a test tier needs (``path``: its expected place, or None to look on PATH)."""
    found = (path if os.access(path, os.X_OK) else None) if path else shutil.which(name)
    if found:
        return Result(name, "ok", f"{found}")
    where = path or f"{name} on PATH"
    return Result(name, "warn", f"{where} is missing: {purpose} skips",
                  f"as root: apt-get install {package} (make test does it when run as root with apt-get)")


def check_chromium(path: str = "/usr/bin/chromium") -> Result:
    return check_program("chromium", path, "the web UI browser test", "chromium")


def check_redis_server() -> Result:
    return check_program("redis-server", None, "the broker fault test", "redis-server")


def check_port(name: str, host: str, port: int, fix: str, timeout: float = 1.0) -> Result:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return Result(name, "ok", f"answers on {host}:{port}")
    except OSError as e:
        return Result(name, "warn", f"nothing answers on {host}:{port} ({e.strerror or e}): the Celery integration "
                                    "and browser tests skip", fix)


def check_postgres(port: int = 5432) -> Result:
    return check_port("postgresql", "127.0.0.1", port, "start PostgreSQL on 127.0.0.1:5432 with a `postgres` role "
                      "that may log in without a password from 127.0.0.1 and create databases (test machines only)")


def check_redis(port: int = 6379) -> Result:
    return check_port("redis", "127.0.0.1", port, "start redis-server on 127.0.0.1:6379 (as root: apt-get install "
                      "redis-server, then `redis-server --daemonize yes`)")


def _writable(path: Path) -> bool:
    """True when ``path`` exists and is writable, or could be made: its nearest existing ancestor is a writable
    folder."""
    for p in (path, *path.parents):
        if p.exists():
            return p.is_dir() and os.access(p, os.W_OK)
    return False


def check_airflow_home(env: dict | None = None) -> Result:
    home = Path(embedded_env(env)["AIRFLOW_HOME"])
    origin = "from AIRFLOW_HOME" if (os.environ if env is None else env).get("AIRFLOW_HOME") else "the embedded default"
    db = "its SQLite DB exists" if (home / "airflow.db").exists() else "no DB yet (make demo migrates one)"
    if not _writable(home):
        return Result("airflow home", "fail", f"{home} ({origin}) cannot be written",
                      "point AIRFLOW_HOME at a writable folder, or unset it to use <project>/.airflow")
    return Result("airflow home", "ok", f"{home} ({origin}); {db}")


def check_llmops_home(env: dict | None = None) -> Result:
    home = Path(embedded_env(env)["LLMOPS_HOME"])
    if not _writable(home):
        return Result("llmops home", "fail", f"{home} (snapshots, runs, models) cannot be written",
                      "point LLMOPS_HOME at a writable folder, or unset it to use <project>/.llmops")
    return Result("llmops home", "ok", f"{home} (snapshots, runs, models)")


def check_mlflow(env: dict | None = None, timeout: float = 3.0) -> Result:
    uri = embedded_env(env)["MLFLOW_TRACKING_URI"]
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if not _writable(db.parent):
            return Result("mlflow store", "fail", f"{uri}: {db.parent} cannot be written",
                          "point MLFLOW_TRACKING_URI at a writable place, or unset it for the embedded SQLite store")
        return Result("mlflow store", "ok", f"{uri} ({'exists' if db.exists() else 'made on first use'})")
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
                return Result("mlflow store", "ok", f"{uri} (server answers)")
        except Exception as e:  # noqa: BLE001 - any failure to reach it is the finding
            return Result("mlflow store", "fail", f"{uri}: the server does not answer ({e})",
                          "start that MLflow server, or unset MLFLOW_TRACKING_URI for the embedded SQLite store")
    return Result("mlflow store", "ok", uri)


def torch_in(venv: Path) -> str | None:
    """The torch build in another venv, read from its ``torch/version.py`` (importing torch there takes half a
    minute on a busy host): e.g. ``torch 2.13.0+cpu: CPU build``; None without torch."""
    found = sorted(venv.glob("lib/python3*/site-packages/torch/version.py"))
    if not found:
        return None
    values = dict(re.findall(r"^(__version__|cuda)\b[^=]*= *'?([^'\n]*)'?$", found[-1].read_text(), re.MULTILINE))
    version, cuda = values.get("__version__", "?"), values.get("cuda", "None")
    return f"torch {version}: " + ("CPU build" if cuda == "None" else f"CUDA {cuda} build")


def check_venv(name: str, root: Path = paths.PROJECT_ROOT, gpu: Callable[[], bool] = has_nvidia_gpu) -> Result:
    """An optional venv (.venv-vllm, .venv-gguf): made or not, and the torch build in it."""
    folder = root / VENV_DIRS[name]
    make = {"vllm": "make vllm-tools", "gguf": "make gguf-tools"}[name]
    label = f"venv {name}"
    if not folder.exists():
        return Result(label, "ok", f"{folder.name} not made (optional: {make}, about {VENV_GIB[name]} GiB; its tests "
                                   "make it when they need it)")
    if not (folder / ".installed").exists():
        return Result(label, "warn", f"{folder} is incomplete (no .installed)", f"rm -r {folder.name} && {make}")
    line = torch_in(folder)
    if line is None:
        return Result(label, "warn", f"{folder.name}: no torch installed in it", f"rm -r {folder.name} && {make}")
    if name == "vllm" and "CUDA" in line and not gpu():
        return Result(label, "warn", f"{folder.name}: {line} on a host without a GPU",
                      f"rm -r {folder.name} && TORCH_BUILD=cpu {make}")
    return Result(label, "ok", f"{folder.name}: {line}")


CHECKS: tuple[Callable[[], Result], ...] = (
    check_python, check_torch, check_disk, check_ram, check_gpu, check_compose, check_chromium, check_redis_server,
    check_postgres, check_redis, check_airflow_home, check_llmops_home, check_mlflow,
    lambda: check_venv("vllm"), lambda: check_venv("gguf"),
)


def run_checks(checks: Sequence[Callable[[], Result]] = CHECKS) -> list[Result]:
    results = []
    for check in checks:
        try:
            results.append(check())
        except Exception as e:  # noqa: BLE001 - a broken check is reported, never hides the others
            name = getattr(check, "__name__", "check").removeprefix("check_")
            results.append(Result(name, "warn", f"the check itself failed: {type(e).__name__}: {e}"))
    return results


def report(results: Sequence[Result]) -> tuple[str, int]:
    """The printout and the exit code: 1 when a check fails (it blocks `make demo`), else 0."""
    head = f"llmops doctor: {platform.node()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"
    lines = [head] + [line for r in results for line in r.lines()]
    failed = [r.name for r in results if r.status == "fail"]
    warned = sum(r.status == "warn" for r in results)
    lines.append(f"make demo is blocked by: {', '.join(failed)}" if failed
                 else f"nothing blocks make demo ({warned} warning(s): what they name skips or waits)")
    return "\n".join(lines), 1 if failed else 0


def main() -> int:
    text, code = report(run_checks())
    print(text)
    return code
