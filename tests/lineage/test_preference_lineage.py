"""The feedback DAG's preference task reports its lineage: the prediction log and feedback file it read and the
dataset snapshot whose eval prompts it held out go in, the preference snapshot comes out; a preference run that
trains on that snapshot names it among its inputs, so the lineage graph joins them."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from llmops.config import load_use_case
from llmops.lineage import naming, steps
from llmops.payloads import Preferences, Trained
from tests.data.test_preferences import DAY, rated, served


def test_the_preference_task_reports_the_logs_it_read_and_the_snapshot_it_wrote(use_case_file, sample_rows):
    from llmops.data import preferences
    from llmops.data.snapshots.handle import Snapshots
    from llmops.operators.common import preference_asset
    from llmops.operators.feedback import PreferencesOperator
    from llmops.serving_logs import feedback_dir, log_dir

    cfg = load_use_case(use_case_file(changes={"feedback.min_rows": 3}))
    dataset = Snapshots.of(cfg)
    did = dataset.write_frame(sample_rows.head(100), source={"kind": "test"},
                              validation={"success": True})["snapshot_id"]
    for i, r in sample_rows.iloc[200:204].reset_index(drop=True).iterrows():
        rated(served(i, r["prompt"], r["response"]), 1)

    op = PreferencesOperator(task_id="preferences", use_case=cfg.name)
    assert op.get_openlineage_facets_on_start().inputs == []  # which files and snapshot: decided by the run
    events = defaultdict(SimpleNamespace)
    xcom = op.execute({"run_id": "feedback_1", "ti": SimpleNamespace(try_number=1), "outlet_events": events,
                       "dag_run": SimpleNamespace(partition_key=f"{DAY}T00:00:00", conf={})})
    prefs = Preferences.from_xcom(xcom)
    assert events[preference_asset(cfg.name)].extra == xcom

    ol = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in ol.inputs] == [
        ("file", str(log_dir(cfg.name) / f"{DAY}.jsonl")), ("file", str(feedback_dir(cfg.name) / f"{DAY}.jsonl")),
        naming.from_uri(dataset.uri(did))]
    assert ol.inputs[2].facets["version"].datasetVersion == did
    snapshot = preferences.preference_snapshots(cfg)
    out = ol.outputs[0]
    assert (out.namespace, out.name) == naming.from_uri(snapshot.uri(prefs.preference_snapshot_id))
    assert out.facets["version"].datasetVersion == prefs.preference_snapshot_id
    assert [f.name for f in out.facets["schema"].fields] == preferences.COLUMNS
    assert out.outputFacets["outputStatistics"].rowCount == 4
    assert out.facets["llmops"].properties["kind"] == "preferences"
    assert out.facets["llmops"].properties["parents"] == [did]

    trained = Trained.from_xcom({"snapshot_id": did, "mlflow_run_id": "m1", "adapter_dir": "/runs/a/adapter",
                                 "base_model": "org/base", "preference_snapshot_id": prefs.preference_snapshot_id,
                                 "preference_snapshot_uri": prefs.uri})
    tuned_on = steps.finetune_inputs(trained, dataset.uri(did))
    assert (tuned_on[2].namespace, tuned_on[2].name) == (out.namespace, out.name)
