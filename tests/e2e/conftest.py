"""A real Airflow (LocalExecutor + SQLite) and MLflow (SQLite) in a tmp folder, driven with `airflow dags test`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmops.embedded import embedded_env
from tests import airflow_db

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def write_use_case(directory: Path, name: str, **overrides) -> Path:
    """A use case like the bundled one, made small enough to train in seconds."""
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg.update(name=name, tags=["e2e"])
    cfg["training"].update(epochs=1, batch_size=16, max_seq_len=96)
    cfg["evaluation"].update(max_eval_rows=48, generation_samples=8, max_new_tokens=24, batch_size=16)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class Airflow:
    def __init__(self, env: dict, home: Path):
        self.env = env
        self.home = home

    def run(self, *argv: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        return subprocess.run([AIRFLOW, *argv], env=self.env, capture_output=True, text=True, timeout=timeout)

    def dags_test(self, dag_id: str, conf: str | None = None) -> subprocess.CompletedProcess:
        return self.run("dags", "test", dag_id, *(["-c", conf] if conf else []))


@pytest.fixture(scope="session")
def airflow(tmp_path_factory, tiny_model_dir, sample_rows) -> Airflow:
    base = tmp_path_factory.mktemp("e2e")
    use_cases, data = base / "use_cases", base / "data"
    use_cases.mkdir()
    data.mkdir()
    # 400 rows: enough to learn something, small enough for a few seconds of CPU training
    sample_rows.head(400).rename(columns={"prompt": "question", "response": "answer"}).to_json(
        data / "qa.jsonl", orient="records", lines=True, date_format="iso")
    good_lines = (data / "qa.jsonl").read_text().splitlines()
    broken = data / "broken"
    broken.mkdir()
    lines = good_lines[:4] + ['{"question": "unterminated'] + good_lines[4:60]
    (broken / "qa.jsonl").write_text("\n".join(lines) + "\n")

    batch = data / "batch"
    batch.mkdir()
    sample_rows.iloc[400:416][["prompt"]].rename(columns={"prompt": "question"}).to_json(
        batch / "questions.jsonl", orient="records", lines=True)

    common = {"base_model": str(tiny_model_dir), "source": {"path": str(data / "qa.jsonl")}}
    # monitoring: no latency limit worth the name (no timing in tests), and not a single withheld response
    serving = {"batch_input": str(batch / "*.jsonl"), "batch_prompt_column": "question", "batch_size": 8,
               "max_new_tokens": 16, "monitoring": {"max_p95_latency_ms": 3_600_000, "max_block_rate": 0.0}}
    write_use_case(use_cases, "e2e_qa", **common, serving=serving,
                   gate={"rules": [{"metric": "eval_loss_improvement", "min": 0.01}], "promote_to_champion": True})
    write_use_case(use_cases, "e2e_strict", **common,
                   gate={"rules": [{"metric": "exact_match", "min": 1.01}], "promote_to_champion": True})
    write_use_case(use_cases, "e2e_broken", base_model=str(tiny_model_dir), source={"path": str(broken / "qa.jsonl")})

    env = embedded_env({"PATH": os.environ["PATH"]})
    env.update({
        "LLMOPS_HOME": str(base / "llmops-home"),
        "LLMOPS_USE_CASES_DIR": str(use_cases),
        "LLMOPS_DATA_ROOTS": str(base),  # the test data lives in this tmp folder, outside the project
        "AIRFLOW_HOME": str(base / "airflow-home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'llmops-home' / 'mlflow.db'}",
        "HOME": os.environ.get("HOME", str(base)),
    })
    af = Airflow(env, base / "llmops-home")
    migrated = af.run("db", "migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    return af


PROBE_SECRET = "s3cr3t-probe-password"  # an Airflow connection's password that no lineage event may carry


@pytest.fixture(scope="session")
def qa_champion(airflow) -> dict:
    """The e2e use case's first version, trained once for the session: the dataset DAG, then the finetune DAG with
    ``lora_rank`` 4 from the trigger form's conf. The registration test, the lineage test and the serving DAG tests
    all read this one run (``lineage``: the events' file; ``run_ids``: the two runs). OpenLineage is on for these two runs only (the provider's file transport into
    ``lineage``; a connection holding a secret is defined, which no event may carry)."""
    lineage = airflow.home.parent / "openlineage.jsonl"
    env = {**airflow.env,
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(lineage),
                                                          "append": True}),
           "AIRFLOW_CONN_LLMOPS_PROBE": f"http://probe:{PROBE_SECRET}@probe.invalid"}
    lineaged = Airflow(env, airflow.home)
    dataset = lineaged.dags_test("e2e_qa__dataset")
    assert dataset.returncode == 0, (dataset.stdout + dataset.stderr)[-4000:]
    finetune = lineaged.dags_test("e2e_qa__finetune", conf=json.dumps({"lora_rank": 4}))
    assert finetune.returncode == 0, (finetune.stdout + finetune.stderr)[-4000:]
    run_ids = [airflow_db.dag_runs(airflow.env, f"e2e_qa__{dag}")[-1]["run_id"] for dag in ("dataset", "finetune")]
    return {"lineage": lineage, "run_ids": run_ids}
