"""The lm-eval regression suite on the tiny model: the shipped local tasks really run through the harness, on
base, champion and challenger over the same documents, with adapters switched on one loaded base; the scores
equal the harness's own PEFT loading; gate rules over them; a broken task YAML names its file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmops import paths
from llmops.config import EvaluationConfig, GateConfig, GateRule, RegressionConfig
from llmops.errors import ConfigError
from llmops.evaluate.evaluation import evaluate_candidates
from llmops.evaluate.gate import decide
from llmops.evaluate.regression import RegressionSuite, load_local_task, resolve_tasks
from llmops.prompts import PromptTemplate

TASKS = ["license_cloze", "license_next_words"]
LIMIT = 12
EVALS = paths.resolve("include/evals")
CFG = EvaluationConfig(max_eval_rows=8, generation_samples=2, max_new_tokens=4, batch_size=8,
                       regression=RegressionConfig(tasks=TASKS, limit=LIMIT, batch_size=16))


@pytest.fixture(scope="module")
def results(tiny_model_dir, adapters, sample_rows):
    champion = {"version": "3", "adapter_dir": adapters["champion"], "base_model": str(tiny_model_dir),
                "revision": None}
    return evaluate_candidates(sample_rows.iloc[100:108], base_model=str(tiny_model_dir), revision=None,
                               adapter_dir=adapters["challenger"],
                               template=PromptTemplate(path="inline", text="Q: {prompt}\nA: "), cfg=CFG, max_len=96,
                               champion=champion)


def test_every_candidate_runs_every_task_on_the_same_docs(results):
    cands = results["candidates"]
    for name, c in cands.items():
        m, pe = c["metrics"], c["per_example"]
        for key in ("license_cloze.acc", "license_cloze.acc_norm", "license_next_words.exact_match"):
            scores = pe[f"regression.{key}"]
            assert len(scores) == LIMIT and set(scores) <= {0.0, 1.0}, (name, key)
            assert m[f"regression.{key}"] == pytest.approx(sum(scores) / LIMIT)
            se = m[f"regression.{key}_stderr"]
            p = m[f"regression.{key}"]
            assert se == pytest.approx((p * (1 - p) / (LIMIT - 1)) ** 0.5, abs=1e-9), (name, key)  # sample stderr
        assert m["regression.license_cloze.docs"] == LIMIT and m["regression_seconds"] > 0
    cloze = {n: c["per_example"]["regression.license_cloze.acc"] for n, c in cands.items()}
    assert len(cloze) == 3


def test_adapter_switching_equals_the_harness_loading_the_adapter_itself(results, tiny_model_dir, adapters):
    """Scores with adapters switched on one loaded base = lm-eval's own `pretrained=...,peft=...` loading."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    specs = resolve_tasks(["license_cloze"], EVALS)
    args = f"pretrained={tiny_model_dir},peft={adapters['challenger']},max_length=96"
    out = lm_eval.simple_evaluate(model="hf", model_args=args, tasks=specs, limit=LIMIT, device="cpu", batch_size=16,
                                  task_manager=TaskManager(verbosity="WARNING"), verbosity="WARNING",
                                  bootstrap_iters=0)
    docs = sorted(out["samples"]["license_cloze"], key=lambda s: s["doc_id"])
    ours = results["candidates"]["challenger"]["per_example"]["regression.license_cloze.acc_norm"]
    assert [float(s["acc_norm"]) for s in docs] == ours


def test_gate_rules_over_regression_metrics_are_non_inferiority(results):
    metrics = {n: c["metrics"] for n, c in results["candidates"].items()}
    per_example = {n: c["per_example"] for n, c in results["candidates"].items()}
    rule = GateRule(metric="regression.license_cloze.acc", vs="base", margin=-0.02, ci=True)
    d = decide(metrics, GateConfig(rules=[rule]), per_example)
    r = d["rules"][0]
    diff = metrics["challenger"][rule.metric] - metrics["base"][rule.metric]
    assert r["improvement"] == pytest.approx(diff) and r["ci_n"] == LIMIT
    assert r["passed"] == (diff >= -0.02 and r["ci_low"] >= -0.02)
    assert "regression.license_cloze.acc vs base" in r["reason"]
    # against itself: the difference is exactly 0 with a zero-width interval, so non-inferiority passes
    same = {**metrics, "challenger": metrics["base"]}
    d2 = decide(same, GateConfig(rules=[rule]), {**per_example, "challenger": per_example["base"]})
    assert d2["passed"] and d2["rules"][0]["ci_low"] == 0.0


def test_report_shows_the_regression_table(results, tmp_path):
    from llmops.evaluate.report import write_report

    text = write_report(tmp_path, results, None, title="t").read_text()
    assert "## Regression suite (lm-evaluation-harness)" in text
    assert f"| license_cloze.acc | {LIMIT} |" in text and " ± " in text


def _copy_task(tmp_path: Path, name: str = "license_cloze") -> Path:
    for f in (f"{name}.yaml", f"{name}.jsonl"):
        shutil.copy(EVALS / f, tmp_path / f)
    return tmp_path / f"{name}.yaml"


@pytest.mark.parametrize(("old", "new", "field"), [
    ("output_type: multiple_choice", "output_type: multiple_choise", "output_type"),
    ("doc_to_text: \"{{context}}\"\n", "", "doc_to_text"),
    ("test: license_cloze.jsonl", "test: missing.jsonl", "dataset_kwargs.data_files.test"),
    ("task: license_cloze", "task: other_name", "task"),
    ("test_split: test", "test_split: validation", "test_split"),
])
def test_a_broken_task_yaml_names_its_file_and_field(tmp_path, old, new, field):
    path = _copy_task(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as e:
        resolve_tasks(["license_cloze"], tmp_path)
    assert str(path) in str(e.value) and f"field '{field}'" in str(e.value)


def test_invalid_yaml_names_the_line(tmp_path):
    path = _copy_task(tmp_path)
    path.write_text(path.read_text() + "metadata: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        load_local_task(path)


def test_the_shipped_tasks_resolve_data_files_against_their_folder():
    for spec in resolve_tasks(TASKS, EVALS):
        f = Path(spec["dataset_kwargs"]["data_files"]["test"])
        assert f.is_absolute() and f.parent == EVALS.resolve() and f.stat().st_size < 50_000


def test_a_task_given_as_its_path_resolves_like_its_name(tmp_path, monkeypatch):
    """``include/evals/<name>.yaml`` (relative to the project root, or absolute) is the same local task as
    ``<name>``, whatever the working directory; its results come back under the YAML's task name."""
    monkeypatch.chdir(tmp_path)
    by_name = resolve_tasks(["license_cloze"], EVALS)
    for entry in ("include/evals/license_cloze.yaml", str(EVALS / "license_cloze.yaml")):
        assert resolve_tasks([entry], EVALS) == by_name, entry
    suite = RegressionSuite(["include/evals/license_cloze.yaml", "license_next_words"], EVALS)
    assert suite.names == TASKS and suite.specs == resolve_tasks(TASKS, EVALS)


def test_a_task_given_as_a_path_runs_through_the_harness_from_another_folder(tiny_model_dir, tmp_path, monkeypatch):
    """A YAML of the user's own beside its JSONL, named by its path: the harness reads the data file next to the
    YAML (not in the working directory) and the metrics carry the task's name."""
    from llmops.model import loading

    folder = tmp_path / "my_evals"
    folder.mkdir()
    (folder / "my_task.jsonl").write_text((EVALS / "license_cloze.jsonl").read_text())
    (folder / "my_task.yaml").write_text((EVALS / "license_cloze.yaml").read_text().replace("license_cloze", "my_task"))
    monkeypatch.chdir(tmp_path)
    base, tokenizer = loading.load_base(str(tiny_model_dir), None)
    out = RegressionSuite([str(folder / "my_task.yaml")], EVALS, limit=4, batch_size=4, max_length=96).score(
        base, tokenizer)
    assert out["metrics"]["regression.my_task.docs"] == 4
    assert set(out["per_example"]["regression.my_task.acc"]) <= {0.0, 1.0}
    assert len(out["per_example"]["regression.my_task.acc"]) == 4
