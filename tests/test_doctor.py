"""`python -m llmops.cli doctor`: the real checks on this host, the shape of every line, and the advice of failing
ones."""

from __future__ import annotations

import re
import socket

import pytest

from llmops import cli, doctor
from llmops.doctor import Result

LINE = re.compile(r"^(ok|warn|fail) +\S.{0,13} +\S.*$")
FIX = re.compile(r"^ {21}-> \S.*$")


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_real_checks_on_this_host_give_one_finding_each_and_lines_of_one_shape():
    results = doctor.run_checks()
    names = [r.name for r in results]
    assert names == ["python", "torch", "disk", "ram", "gpu", "compose", "chromium", "redis-server", "postgresql",
                     "redis", "airflow home", "llmops home", "mlflow store", "venv vllm", "venv gguf"]
    for r in results:
        assert r.status in doctor.STATUSES and r.finding and "\n" not in r.finding, r
        assert r.status == "ok" or r.fix, f"{r.name}: a warn or fail says what to do"
    text, code = doctor.report(results)
    lines = text.splitlines()
    assert lines[0].startswith("llmops doctor: ") and "CPU cores" in lines[0]
    for line in lines[1:-1]:
        assert LINE.match(line) or FIX.match(line), line
    assert code == (1 if any(r.status == "fail" for r in results) else 0)
    assert lines[-1].startswith("make demo is blocked by: " if code else "nothing blocks make demo")
    torch_line = next(r for r in results if r.name == "torch")
    assert torch_line.status != "fail" and "2.13.0" in torch_line.finding  # the test process has the project's torch


def test_the_cli_command_prints_the_report_and_exits_by_it(capsys):
    code = cli.main(["doctor"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("llmops doctor: ") and any(line.startswith(("ok    torch", "warn  torch")) for line in out)
    assert code == (1 if any(line.startswith("fail") for line in out) else 0)


def test_an_unused_port_is_a_warning_that_says_how_to_start_the_service():
    port = _unused_port()
    r = doctor.check_redis(port=port)
    assert r.status == "warn" and f"nothing answers on 127.0.0.1:{port}" in r.finding and "tests skip" in r.finding
    assert "redis-server" in r.fix
    pg = doctor.check_postgres(port=port)
    assert pg.status == "warn" and pg.fix.startswith("start PostgreSQL on 127.0.0.1:5432")
    first, advice = r.lines()
    assert LINE.match(first) and FIX.match(advice) and advice.endswith(r.fix)


def test_a_missing_chromium_says_what_to_install_and_what_skips(tmp_path):
    r = doctor.check_chromium(str(tmp_path / "chromium"))
    assert r.status == "warn" and "browser test skips" in r.finding
    assert r.fix.startswith("as root: apt-get install chromium")
    assert doctor.check_program("true", None, "x", "coreutils").status == "ok"


def test_an_airflow_home_that_cannot_be_made_fails_and_blocks_the_demo(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = doctor.check_airflow_home({"AIRFLOW_HOME": str(blocker / "home")})
    assert r.status == "fail" and "cannot be written" in r.finding and "from AIRFLOW_HOME" in r.finding
    assert "AIRFLOW_HOME" in r.fix
    ok = doctor.check_airflow_home({"AIRFLOW_HOME": str(tmp_path / "new" / "home")})
    assert ok.status == "ok" and "no DB yet" in ok.finding
    text, code = doctor.report([ok, r])
    assert code == 1 and text.splitlines()[-1] == "make demo is blocked by: airflow home"
    assert doctor.check_llmops_home({"LLMOPS_HOME": str(blocker / "x")}).status == "fail"


def test_an_mlflow_server_that_does_not_answer_fails_and_the_embedded_store_is_reported(tmp_path):
    uri = f"http://127.0.0.1:{_unused_port()}"
    r = doctor.check_mlflow({"MLFLOW_TRACKING_URI": uri}, timeout=1)
    assert r.status == "fail" and r.finding.startswith(f"{uri}: the server does not answer")
    assert "MLFLOW_TRACKING_URI" in r.fix
    ok = doctor.check_mlflow({"LLMOPS_HOME": str(tmp_path)})
    assert ok.status == "ok" and ok.finding == f"sqlite:///{tmp_path}/mlflow.db (made on first use)"


def test_disk_and_ram_are_measured_against_each_target(tmp_path):
    # a fresh clone (no venv made yet): the demo needs the project's venv too
    assert doctor.need_gib("demo", tmp_path) == pytest.approx(doctor.VENV_GIB["main"] + doctor.NEEDS["demo"][1])
    fail = doctor.check_disk(tmp_path, free_gib=1.0)
    assert fail.status == "fail" and "free 2.8 GiB more for make demo" in fail.fix
    warn = doctor.check_disk(tmp_path, free_gib=6.0)
    assert warn.status == "warn" and "test" in warn.fix and "compose" in warn.fix and "demo" not in warn.fix
    assert doctor.check_disk(tmp_path, free_gib=100.0).status == "ok"
    assert doctor.check_ram(total_gib=2.0, available_gib=1.0).status == "fail"
    warn = doctor.check_ram(total_gib=16.0, available_gib=5.0)
    assert warn.status == "warn" and warn.fix.startswith("too little free now for test, vllm-tools, compose:")
    total, available = doctor.memory_gib()
    assert total >= available > 0


def test_optional_venvs_made_or_not_and_the_torch_build_in_them(tmp_path):
    missing = doctor.check_venv("vllm", tmp_path, gpu=lambda: False)
    assert missing.status == "ok" and "not made" in missing.finding and "make vllm-tools" in missing.finding
    venv = tmp_path / ".venv-vllm"
    (venv / "bin").mkdir(parents=True)
    incomplete = doctor.check_venv("vllm", tmp_path, gpu=lambda: False)
    assert incomplete.status == "warn" and incomplete.fix == "rm -r .venv-vllm && make vllm-tools"
    (venv / ".installed").touch()
    version = venv / "lib" / "python3.11" / "site-packages" / "torch" / "version.py"
    version.parent.mkdir(parents=True)
    version.write_text("__version__ = '2.13.0+cu128'\ncuda: Optional[str] = '12.8'\n")
    cuda = doctor.check_venv("vllm", tmp_path, gpu=lambda: False)
    assert cuda.status == "warn" and "CUDA 12.8 build on a host without a GPU" in cuda.finding
    assert cuda.fix == "rm -r .venv-vllm && TORCH_BUILD=cpu make vllm-tools"
    assert doctor.check_venv("vllm", tmp_path, gpu=lambda: True).status == "ok"
    version.write_text("__version__ = '2.13.0+cpu'\ndebug = False\ncuda: Optional[str] = None\n")
    assert doctor.check_venv("vllm", tmp_path).finding == ".venv-vllm: torch 2.13.0+cpu: CPU build"


def test_python_versions_and_a_check_that_breaks(tmp_path):
    assert doctor.check_python((3, 9, 18)).status == "fail"
    assert doctor.check_python((3, 12, 1)).status == "warn"
    assert doctor.check_python((3, 11, 7)).status == "ok"

    def check_broken() -> Result:
        raise RuntimeError("boom")
    (r,) = doctor.run_checks([check_broken])
    assert (r.name, r.status) == ("broken", "warn") and "RuntimeError: boom" in r.finding
