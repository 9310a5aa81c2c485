"""The docker-compose topology as local processes: CeleryExecutor on PostgreSQL + Redis, two workers, MLflow server.

Everything lives in one tmp folder (Airflow home, logs, artifacts) plus two throw-away PostgreSQL databases and a
key prefix in one Redis database; :meth:`Topology.stop` removes the processes (whole process groups) and both
databases, and is safe to call after a partial start.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from llmops.ports import free_port

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BIN = Path(sys.executable).parent
USE_CASE = "it_qa"  # the use case the topology tests write (tiny model, gpu queue)
FINETUNE_CONF = {"epochs": 1, "lora_rank": 4}
# Faults (tests/integration/test_celery_faults.py): lost task instances are detected after 30 s without a
# heartbeat (checked every 5 s), orphaned tasks of a stopped scheduler are looked for every 20 s, the MLflow
# client gives up on a dead server after 2 HTTP retries, and a failed try is retried 3 times, 10 s apart.
FAULT_USE_CASE = "ft_qa"
FAULT_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
HOSTNAME_MODULE = ('''import os\n\n\ndef hostname():\n'''
                   '''    return os.environ.get("LLMOPS_WORKER_HOSTNAME") or __import__("socket").getfqdn()\n''')


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pg(dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname)
    conn.autocommit = True
    return conn


def create_database(name: str) -> None:
    drop_database(name)
    query("postgres", f'CREATE DATABASE "{name}"', fetch=False)


def drop_database(name: str) -> None:
    query("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', fetch=False)


def query(dbname: str, sql: str, fetch: bool = True) -> list[tuple]:
    conn = _pg(dbname)  # autocommit: CREATE/DROP DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if fetch else []
    finally:
        conn.close()


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return f"----- {path.name} (last {chars} chars) -----\n" + path.read_text(errors="replace")[-chars:]
    except OSError as e:
        return f"----- {path.name}: {e}"


class Topology:
    """api-server, scheduler, dag-processor, triggerer, Celery workers for `default` and `gpu`, MLflow server."""

    def __init__(self, base: Path, env: dict[str, str], *, private_redis: bool = False,
                 settings: dict[str, str] | None = None):
        """``private_redis``: run an own ``redis-server`` on a free port (so a test may restart the broker without
        touching the machine's Redis); ``settings``: extra environment (Airflow config) for every component."""
        self.base = base
        self.logs = base / "process-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        tag = secrets.token_hex(4)
        self.airflow_db, self.mlflow_db = f"llmops_it_airflow_{tag}", f"llmops_it_mlflow_{tag}"
        self.redis_db, self.redis_prefix = 9 + int(tag, 16) % 7, f"llmops-it-{tag}:"
        self.redis_port = free_port() if private_redis else REDIS_PORT
        self.private_redis = private_redis
        self.api_port, self.mlflow_port = free_port(), free_port()
        self.api_url, self.mlflow_url = f"http://127.0.0.1:{self.api_port}", f"http://127.0.0.1:{self.mlflow_port}"
        self.username, self.password = "admin", secrets.token_urlsafe(12)
        self.worker_hostnames = {"default": "llmops-worker-default", "gpu": "llmops-worker-gpu"}
        self.procs: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}  # name -> argv, extra env (for restarts)
        hooks = base / "hooks"
        hooks.mkdir(exist_ok=True)
        (hooks / "llmops_it_hostname.py").write_text(HOSTNAME_MODULE)
        (base / "passwords.json").write_text(json.dumps({self.username: self.password}))
        pg = f"{PG_USER}@{PG_HOST}:{PG_PORT}"
        self.env = dict(env)
        self.env.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}/{self.airflow_db}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{self.redis_port}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}/{self.airflow_db}",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.redis_prefix,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(base / "passwords.json"),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "llmops_it_hostname.hostname",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(base / "airflow-logs"),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "PYTHONPATH": os.pathsep.join(p for p in (str(hooks), env.get("PYTHONPATH", "")) if p),
        })
        self.env.update(settings or {})

    # processes -------------------------------------------------------------------------------------------------
    def _start(self, name: str, argv: list[str], **extra_env: str) -> None:
        self.commands[name] = (argv, extra_env)
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.procs[name] = subprocess.Popen(argv, env={**self.env, **extra_env}, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.base)
        out.close()

    def airflow(self, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "airflow"), *argv], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.base)

    def start(self) -> None:
        if self.private_redis:
            self.start_redis()
        create_database(self.airflow_db)
        create_database(self.mlflow_db)
        self._start("mlflow", [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.mlflow_port),
                               "--workers", "1",
                               "--backend-store-uri",
                               f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.mlflow_db}",
                               "--artifacts-destination", str(self.base / "mlflow-artifacts")],
                    MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")  # as in docker-compose.yaml: no server-side jobs
        migrated = self.airflow("db", "migrate", timeout=600)
        assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
        af = str(BIN / "airflow")
        self._start("api-server", [af, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port),
                                   "--workers", "1"])
        self._start("scheduler", [af, "scheduler"])
        self._start("dag-processor", [af, "dag-processor"])
        self._start("triggerer", [af, "triggerer"])
        for queue, hostname in self.worker_hostnames.items():
            self._start(f"worker-{queue}", [af, "celery", "worker", "--queues", queue, "--concurrency", "1",
                                            "--celery-hostname", f"{hostname}@%h", "--without-gossip",
                                            "--without-mingle"],
                        LLMOPS_WORKER_HOSTNAME=hostname, AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))
        self.wait_http(f"{self.api_url}/api/v2/version", "api-server")
        self.wait_http(f"{self.mlflow_url}/health", "mlflow")

    def start_redis(self) -> None:
        """A private redis-server (append-only file in the tmp folder, like a broker with a volume)."""
        (self.base / "redis").mkdir(exist_ok=True)
        self._start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", REDIS_HOST, "--save", "",
                              "--appendonly", "yes", "--dir", str(self.base / "redis")])
        deadline = time.monotonic() + 30
        while not reachable(REDIS_HOST, self.redis_port):
            self.check_alive()
            assert time.monotonic() < deadline, f"redis-server did not listen on {self.redis_port}\n{self.tails()}"
            time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60) -> None:
        """Signal a component's whole process group (its task processes too) and wait until it is gone."""
        p = self.procs[name]
        tree = _descendants(p)
        _signal_group(p, sig)
        if sig == signal.SIGKILL:  # a lost machine: the task processes in their own sessions go too
            _kill_all(tree)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(p, signal.SIGKILL)  # children left behind by a graceful stop
        _kill_all(tree)
        p.wait(timeout=10)

    def restart(self, name: str, as_name: str | None = None, **extra_env: str) -> None:
        """Start a component again with its command (under ``as_name``, with more environment, if given)."""
        argv, env = self.commands[name]
        if as_name and as_name != name:
            self.procs[f"{name} (stopped)"] = self.procs.pop(name)
        self._start(as_name or name, argv, **{**env, **extra_env})

    def wait_http(self, url: str, name: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if requests.get(url, timeout=5).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AssertionError(f"{name} did not answer at {url} within {timeout:.0f}s\n{self.tails()}")

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None and "(stopped)" not in n}
        assert not dead, f"processes exited early: {dead}\n{self.tails()}"

    def tails(self, chars: int = 2500) -> str:
        files = sorted(self.logs.glob("*.log"))
        task_logs = sorted((self.base / "airflow-logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)[-3:] \
            if (self.base / "airflow-logs").exists() else []
        return "\n".join(tail(p, chars) for p in [*files, *task_logs])

    def stop(self) -> None:
        trees = [_descendants(p) for p in self.procs.values()]
        for p in self.procs.values():
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(p, signal.SIGKILL)  # the group: task processes and gunicorn/uvicorn children too
            p.wait(timeout=10)
        for tree in trees:
            _kill_all(tree)
        for db in (self.airflow_db, self.mlflow_db):
            try:
                drop_database(db)
            except Exception as e:  # keep cleaning up; report at the end
                print(f"could not drop database {db}: {e}", file=sys.stderr)
        try:
            import redis

            if self.private_redis:
                return
            r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db)
            for key in r.scan_iter(match=f"{self.redis_prefix}*"):
                r.delete(key)
        except Exception as e:
            print(f"could not clean Redis keys {self.redis_prefix}*: {e}", file=sys.stderr)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _descendants(p: subprocess.Popen) -> list:
    """Every process under ``p``, including Airflow task processes, which run in a session of their own (so a
    signal to the component's process group does not reach them)."""
    import psutil

    try:
        return psutil.Process(p.pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(procs: list) -> None:
    import psutil

    for proc in procs:
        try:
            proc.kill()  # psutil checks that the pid still belongs to the process it found
        except psutil.Error:
            pass


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
