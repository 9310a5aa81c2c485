"""The project's docker-compose.yaml brought up for real, under a project name of its own, for the compose tests.

A compose engine must answer (`docker compose version` and `docker info`); otherwise :func:`skip_reason` says
why and the tests skip. The stack is the project's own compose file and Dockerfile, with a test-only override that
publishes every port on 127.0.0.1 (free ports), keeps logs in a temporary folder, adds one test-only use case
and shortens the scheduler's lost-task detection. :meth:`ComposeStack.down` removes everything, volumes included.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SAMPLE_USE_CASE = "stackoverflow_qa"
FAULT_USE_CASE = "compose_faults"
USE_CASES_IN_STACK = "/opt/llmops/test-use-cases"
# every service that runs the project's code (and so reads the use cases)
CODE_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer", "airflow-worker", "llmops-api")
# what the test starts: the CPU deployment (the GPU worker is in the `gpu` profile)
SERVICES = ("deployment-check", "postgres", "redis", "mlflow", *CODE_SERVICES)
# `make test` builds the image in the background while the in-process tests run (:func:`prebuild`); the build holds
# this lock, and :meth:`ComposeStack.up` waits on it before its own build (then a cache hit)
PREBUILD_LOCK = ROOT / "test-artifacts" / "compose-prebuild.lock"
PREBUILD_LOG = ROOT / "test-artifacts" / "compose-prebuild.log"
BUSY_HOST_HEALTHCHECK = {"timeout": "120s", "retries": 20, "start_period": "600s"}
# the environment a compose command sees: the engine's settings only, never a developer's deployment values
ENGINE_ENV = ("PATH", "HOME", "USER", "LANG", "TMPDIR", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONFIG",
              "DOCKER_BUILDKIT", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONTAINERS_CONF",
              "COMPOSE_ENGINE_HOME")
# lost task instances found 45 s after their last heartbeat (default 300 s), checked every 5 s
SCHEDULER_SETTINGS = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
                      "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"}


def _engine_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ENGINE_ENV}


def skip_reason() -> str | None:
    """Why the compose tests cannot run here, or None when a compose engine answers."""
    if shutil.which("docker") is None:
        return "no compose engine: the docker CLI is not on PATH (see docs/deployment.md)"
    for argv in (["docker", "compose", "version"], ["docker", "info", "--format", "{{.ServerVersion}}"]):
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_engine_env())
        except subprocess.TimeoutExpired:
            return f"no compose engine: `{' '.join(argv[:2])}` did not answer within 60 s"
        if proc.returncode != 0:
            return f"no compose engine: `{' '.join(argv)}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fault_use_case() -> dict:
    """The sample use case made small, with a permissive gate: 256 training rows in batches of 16 (16 steps per
    epoch), a complete checkpoint every 8 steps, 3 retries 10 s apart. Epochs come from the trigger's conf."""
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / f"{SAMPLE_USE_CASE}.yaml").read_text())
    cfg.update(name=FAULT_USE_CASE, tags=["compose-test"], schedule=None, retries=3, retry_delay_s=10)
    cfg["training"].update(epochs=1, batch_size=16, max_seq_len=96, max_train_rows=256, checkpoint_every_steps=8,
                           keep_checkpoints=2, logging_steps=4)
    cfg["evaluation"].update(max_eval_rows=24, generation_samples=4, max_new_tokens=16, batch_size=8)
    cfg["gate"] = {"rules": [{"metric": "eval_loss", "max": 1e6}], "promote_to_champion": True}
    return cfg


class ComposeStack:
    def __init__(self, workdir: Path, project: str | None = None):
        self.workdir = workdir
        self.project = project or f"llmops-test-{secrets.token_hex(3)}"
        self.ports = {"airflow": free_port(), "mlflow": free_port(), "api": free_port()}
        self.password = secrets.token_urlsafe(18)
        self.api_key = "sk-" + secrets.token_urlsafe(24)
        # MLflow's accounts (docker/mlflow_server.py): role -> (username, password)
        self.mlflow_accounts = {role: (name, secrets.token_urlsafe(18)) for role, name in (
            ("admin", "admin"), ("service", "llmops"), ("reader", "reader"), ("serving", "model-api"))}
        self.timings: dict[str, float] = {}
        self.env_file = workdir / "deployment.env"
        self.override = workdir / "compose.test.yaml"
        self._write_files()

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['airflow']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def _write_files(self) -> None:
        from cryptography.fernet import Fernet

        # what a user puts into .env (docs/deployment.md), production profile: the checks run
        values = {
            "LLMOPS_DEPLOYMENT_PROFILE": "production",
            "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW_ADMIN_USERNAME": "admin",
            "AIRFLOW_ADMIN_PASSWORD": self.password,
            "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
            "LLMOPS_API_KEYS": self.api_key,
            **{f"MLFLOW_{role.upper()}_{what}": value for role, (user, password) in self.mlflow_accounts.items()
               for what, value in (("USERNAME", user), ("PASSWORD", password))},
            "PUBLISH_ADDRESS": "127.0.0.1",
            "AIRFLOW_PORT": str(self.ports["airflow"]),
            "MLFLOW_PORT": str(self.ports["mlflow"]),
            "LLMOPS_API_PORT": str(self.ports["api"]),
            "AIRFLOW_BASE_URL": self.airflow_url,
            "MLFLOW_UI_URL": self.mlflow_url,
            "COMPOSE_PROFILES": "",
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        use_cases = self.workdir / "use_cases"
        use_cases.mkdir()
        (use_cases / f"{FAULT_USE_CASE}.yaml").write_text(yaml.safe_dump(fault_use_case(), sort_keys=False))
        for folder in ("logs", "config"):
            (self.workdir / folder).mkdir()
        sample = ROOT / "include" / "use_cases" / SAMPLE_USE_CASE
        mounts = [f"{sample}.yaml:{USE_CASES_IN_STACK}/{SAMPLE_USE_CASE}.yaml:ro",
                  f"{use_cases / FAULT_USE_CASE}.yaml:{USE_CASES_IN_STACK}/{FAULT_USE_CASE}.yaml:ro",
                  f"{self.workdir / 'logs'}:/opt/airflow/logs",
                  f"{self.workdir / 'config'}:/opt/airflow/config"]
        services = {name: {"environment": {"LLMOPS_USE_CASES_DIR": USE_CASES_IN_STACK}, "volumes": mounts}
                    for name in CODE_SERVICES}
        services["airflow-scheduler"]["environment"].update(SCHEDULER_SETTINGS)
        # the host is shared with the other test worker (vLLM servers, training): every healthcheck of the file gets
        # the time a busy 2-core host needs; a service still has to answer its own check to count as healthy
        for name, service in yaml.safe_load(COMPOSE_FILE.read_text())["services"].items():
            if name in SERVICES and "healthcheck" in service:
                services.setdefault(name, {})["healthcheck"] = BUSY_HOST_HEALTHCHECK
        self.override.write_text(yaml.safe_dump({"services": services}, sort_keys=False))

    # compose ----------------------------------------------------------------------------------------------------
    def _argv(self, *args: str) -> list[str]:
        return ["docker", "compose", "--project-name", self.project, "--project-directory", str(ROOT),
                "--env-file", str(self.env_file), "-f", str(COMPOSE_FILE), "-f", str(self.override), *args]

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(self._argv(*args), capture_output=True, text=True, timeout=timeout,
                                  env=_engine_env())
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"`docker compose {' '.join(args)}` ran past {timeout:.0f}s\n{self.tails()}") from e
        if check and proc.returncode != 0:
            raise AssertionError(f"`docker compose {' '.join(args)}` exited {proc.returncode}:\n"
                                 f"{(proc.stdout + proc.stderr)[-4000:]}\n{self.tails()}")
        return proc

    def _timed(self, what: str, *args: str, timeout: float) -> None:
        started = time.monotonic()
        self.compose(*args, timeout=timeout)
        self.timings[what] = round(time.monotonic() - started, 1)

    def up(self) -> None:
        """Build the image (airflow-init builds it, once), then start the CPU deployment and wait until every
        service is healthy (airflow-init: completed). A build started earlier by :func:`prebuild` is waited for
        first, so the image is built once."""
        started = time.monotonic()
        wait_for_prebuild()
        self.timings["prebuild_wait"] = round(time.monotonic() - started, 1)
        self._timed("build", "build", "airflow-init", timeout=1800)
        up = ("up", "--detach", "--wait", "--wait-timeout", "1800", *SERVICES)
        try:
            self._timed("up_until_healthy", *up, timeout=1860)
        except AssertionError as e:
            # Podman's API service now and then loses the pipe to a container it is starting ("write child: broken
            # pipe"): an engine hiccup, not the deployment's failure. Start once more from nothing; anything else fails.
            if "write child: broken pipe" not in str(e):
                raise
            self.down()
            self._timed("up_until_healthy", *up, timeout=1860)

    def down(self) -> None:
        started = time.monotonic()
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=300, check=False)
        self.timings["down"] = round(time.monotonic() - started, 1)

    def exec(self, service: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.compose("exec", "-T", service, "bash", "-c", command, timeout=timeout, check=False)

    def read_json(self, path: str, service: str = "airflow-triggerer") -> dict | None:
        """A JSON file in the shared llmops-home volume, read through a running container (None when absent)."""
        proc = self.exec(service, f"cat {path} 2>/dev/null || true")
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def glob(self, pattern: str, service: str = "airflow-triggerer") -> list[str]:
        proc = self.exec(service, f"ls -1d {pattern} 2>/dev/null || true")
        return [line for line in proc.stdout.splitlines() if line.strip()]

    def container(self, service: str) -> tuple[str, str]:
        """(status, started at) of the service's container, as the engine reports them."""
        cid = self.compose("ps", "--all", "--quiet", service).stdout.split()
        if not cid:
            return "absent", ""
        proc = subprocess.run(["docker", "inspect", "--format", "{{.State.Status}} {{.State.StartedAt}}", cid[0]],
                              capture_output=True, text=True, timeout=60, env=_engine_env())
        status, _, started = proc.stdout.strip().partition(" ")
        return status, started

    def task_logs(self, dag_id: str, run_id: str, task_id: str) -> dict[int, str]:
        """attempt number -> that try's task log, from the logs folder the stack writes to."""
        logs = {}
        for p in (self.workdir / "logs").rglob(f"dag_id={dag_id}/*/task_id={task_id}/attempt=*.log"):
            if f"run_id={run_id}" in str(p):
                logs[int(p.stem.split("=")[1])] = p.read_text(errors="replace")
        return logs

    def tails(self, lines: int = 40) -> str:
        try:
            proc = subprocess.run(self._argv("logs", "--no-color", "--tail", str(lines)), capture_output=True,
                                  text=True, timeout=60, env=_engine_env())
            ps = subprocess.run(self._argv("ps", "--all"), capture_output=True, text=True, timeout=60,
                                env=_engine_env())
            return f"--- docker compose ps\n{ps.stdout}\n--- docker compose logs (last {lines} lines each)\n" \
                   f"{proc.stdout[-20000:]}{proc.stderr[-2000:]}"
        except (subprocess.TimeoutExpired, OSError) as e:
            return f"(no compose logs: {e})"


def wait_for_prebuild() -> None:
    """Returns once no background build (:func:`prebuild`) holds :data:`PREBUILD_LOCK`."""
    if not PREBUILD_LOCK.exists():
        return
    with open(PREBUILD_LOCK) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)


def prebuild(background: bool = False) -> int:
    """Builds the image the compose tests start (the same command as :meth:`ComposeStack.up`'s build) where a compose
    engine answers; with ``background``, in a process of its own that holds :data:`PREBUILD_LOCK` until the build
    ends, and returns at once (its output: :data:`PREBUILD_LOG`)."""
    PREBUILD_LOCK.parent.mkdir(exist_ok=True)
    if background:
        lock = open(PREBUILD_LOCK, "w")  # noqa: SIM115 (handed to the child, which holds the lock until it exits)
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(PREBUILD_LOG, "w") as log:
            subprocess.Popen([sys.executable, __file__, "prebuild", "--lock-fd", str(lock.fileno())], stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=(lock.fileno(),),
                             start_new_session=True, cwd=ROOT)
        lock.close()  # the child's copy keeps it locked
        print(f"building the compose tests' image in the background (log: {PREBUILD_LOG.relative_to(ROOT)})")
        return 0
    reason = skip_reason()
    if reason:
        print(f"not built: {reason}")
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmops-prebuild-") as workdir:
        stack = ComposeStack(Path(workdir))
        proc = stack.compose("build", "airflow-init", timeout=1800, check=False)
    print((proc.stdout + proc.stderr)[-4000:])
    print(f"compose build exited {proc.returncode} after {time.monotonic() - started:.0f} s")
    return proc.returncode


if __name__ == "__main__":  # python tests/integration/compose_stack.py prebuild [--background]
    if sys.argv[1:2] != ["prebuild"]:
        sys.exit("usage: compose_stack.py prebuild [--background]")
    if "--lock-fd" in sys.argv:  # the background child: the lock stays held until this process exits
        fd = int(sys.argv[sys.argv.index("--lock-fd") + 1])
        fcntl.flock(fd, fcntl.LOCK_EX)  # already ours (inherited); makes the hand-over explicit
    sys.exit(prebuild(background="--background" in sys.argv))
