"""The evaluate step as a plain function: the tiny base model, a registered champion downloaded from MLflow and
the new adapter, scored on the same eval rows of a snapshot; metrics in MLflow, scores in the run folder."""

from __future__ import annotations

import json

from llmops import paths, registry, tracking
from llmops.config import SplitConfig, load_by_name
from llmops.data.snapshots.handle import Snapshots
from llmops.data.snapshots.store import store_for
from llmops.payloads import Evaluation, Trained
from llmops.steps.evaluate import evaluate

SMALL = {"evaluation.max_eval_rows": 12, "evaluation.generation_samples": 3, "evaluation.max_new_tokens": 6,
         "evaluation.batch_size": 6, "training.max_seq_len": 96}


def test_evaluate_scores_base_champion_and_challenger_on_the_same_rows(use_case_file, tiny_model_dir, adapters,
                                                                        sample_rows):
    use_case_file("eval_qa", SMALL)
    cfg = load_by_name("eval_qa")
    rows = sample_rows.head(60).assign(source_file="qa.jsonl", source_line=range(1, 61))
    snapshots = Snapshots(store_for(cfg), split=SplitConfig(eval_fraction=0.4))
    sid = snapshots.write_frame(rows, source={"kind": "files"}, validation={"success": True})["snapshot_id"]
    champion_run = tracking.run_for_dag_run(cfg.name, "manual__0")
    tracking.log_artifacts(champion_run, adapters["champion"], "adapter")
    registry.register_adapter(cfg.model_name, run_id=champion_run, artifact_path="adapter", promote=True,
                              tags={"base_model": str(tiny_model_dir)})
    run = tracking.run_for_dag_run(cfg.name, "manual__1")
    trained = Trained(snapshot_id=sid, mlflow_run_id=run, adapter_dir=adapters["challenger"],
                      base_model=str(tiny_model_dir))

    out = evaluate(cfg, trained, run_id="manual__1")

    assert isinstance(out, Evaluation) and out.champion_version == "1"
    assert set(out.metrics) == {"base", "champion", "challenger"} and out.rows["eval"] == 12
    results = json.loads((paths.run_dir(cfg.name, "manual__1") / "eval" / "results.json").read_text())
    assert out.results == str(paths.run_dir(cfg.name, "manual__1") / "eval" / "results.json")
    assert {n: c["metrics"] for n, c in results["candidates"].items()} == out.metrics
    assert len({c["metrics"]["eval_loss"] for c in results["candidates"].values()}) == 3  # three real models
    champion_files = paths.run_dir(cfg.name, "manual__1") / "eval" / "champion"
    assert list(champion_files.rglob("adapter_model.safetensors"))  # downloaded from the registry
    logged = tracking.client().get_run(run).data.metrics
    assert logged["challenger_eval_loss"] == out.metrics["challenger"]["eval_loss"]
    assert logged["champion_eval_loss"] == out.metrics["champion"]["eval_loss"]
    summary = json.loads((paths.run_dir(cfg.name, "manual__1") / "summary.json").read_text())
    assert summary["evaluate"]["champion_version"] == "1"
