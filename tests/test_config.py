"""Use-case config: the bundled file loads; every bad file names the file and the dotted field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from llmops import paths
from llmops.config import GateRule, UseCaseConfig, load_all, load_by_name, load_use_case
from llmops.errors import ConfigError

BUNDLED = paths.PROJECT_ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(BUNDLED.read_text())


def write_case(directory: Path, data: dict, stem: str | None = None) -> Path:
    path = directory / f"{stem or data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def with_change(raw: dict, dotted: str, value) -> dict:
    data = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


def test_bundled_use_case_loads():
    cfg = load_use_case(BUNDLED)
    assert isinstance(cfg, UseCaseConfig)
    assert cfg.name == "stackoverflow_qa"
    assert cfg.source.prompt_column == "question"
    assert cfg.source.response_column == "answer"
    assert cfg.source.timestamp_column == "created_at"
    assert cfg.training.epochs == 1 and cfg.training.lora.r == 8
    assert [(r.metric, r.min, r.max, r.vs) for r in cfg.gate.rules] == [
        ("eval_loss_improvement", 0.05, None, None), ("token_f1", 0.2, None, None), ("unsafe_rate", None, 0.0, None),
        ("eval_loss", None, None, "champion")]
    assert cfg.model_name == "stackoverflow_qa-lora"
    assert paths.resolve(cfg.expectation_suite).is_file()
    assert paths.resolve(cfg.prompt_template).is_file()


def test_load_by_name_uses_the_use_cases_dir(tmp_path, monkeypatch, raw):
    write_case(tmp_path, raw)
    monkeypatch.setenv("LLMOPS_USE_CASES_DIR", str(tmp_path))
    assert load_by_name("stackoverflow_qa").name == "stackoverflow_qa"
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such use case 'nope'"):
        load_by_name("nope")


@pytest.mark.parametrize(
    ("dotted", "value", "field", "says"),
    [
        ("training.epochs", -1, "training.epochs", "greater than 0"),
        ("training.lora.r", 0, "training.lora.r", "greater than 0"),
        ("split.eval_fraction", 1.5, "split.eval_fraction", "less than 1"),
        ("training.epoch", 3, "training.epoch", "Extra inputs are not permitted"),
        ("source.format", "xml", "source.format", "'auto', 'jsonl', 'csv' or 'parquet'"),
        ("retries", -2, "retries", "greater than or equal to 0"),
        ("evaluation.golden_snapshot_id", "../x/4394c71abe63714e", "evaluation.golden_snapshot_id",
         "a snapshot id is 16 lower-case hexadecimal digits"),
    ],
)
def test_bad_field_names_file_and_dotted_field(tmp_path, raw, dotted, value, field, says):
    path = write_case(tmp_path, with_change(raw, dotted, value))
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    msg = str(exc.value)
    assert f"{path}: {field}: " in msg
    assert says in msg


def test_unknown_top_level_key_is_rejected(tmp_path, raw):
    path = write_case(tmp_path, {**raw, "epochs": 3})
    with pytest.raises(ConfigError, match=r"stackoverflow_qa\.yaml: epochs: Extra inputs are not permitted"):
        load_use_case(path)


def test_missing_required_field_is_named(tmp_path, raw):
    data = copy.deepcopy(raw)
    del data["base_model"]
    path = write_case(tmp_path, data)
    with pytest.raises(ConfigError, match=r"stackoverflow_qa\.yaml: base_model: Field required"):
        load_use_case(path)


def test_bad_name_is_rejected(tmp_path, raw):
    path = write_case(tmp_path, {**raw, "name": "Bad-Name"})
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    assert f"{path}: name: " in str(exc.value)
    assert "lower-case letters" in str(exc.value)


def test_name_must_equal_file_stem(tmp_path, raw):
    path = write_case(tmp_path, raw, stem="other_name")
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    assert f"{path}: name: must equal the file name 'other_name', got 'stackoverflow_qa'" == str(exc.value)


def test_gate_rule_without_a_bound_is_rejected(tmp_path, raw):
    with pytest.raises(ValueError, match="needs `min` or `max`"):
        GateRule(metric="token_f1")
    path = write_case(tmp_path, with_change(raw, "gate.rules", [{"metric": "token_f1"}]))
    with pytest.raises(ConfigError,
                       match=r"stackoverflow_qa\.yaml: gate\.rules\.0: the rule on 'token_f1' needs `min`"):
        load_use_case(path)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nsource:\n  path: [a, b\nbase_model: x\n")
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: line 4 is not valid YAML")


def test_non_mapping_yaml_is_rejected(tmp_path):
    path = tmp_path / "listy.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"listy\.yaml: expected a mapping at the top level, got list"):
        load_use_case(path)


def test_config_hash_is_stable_and_tracks_changes(tmp_path, raw):
    first, again = load_use_case(BUNDLED), load_use_case(write_case(tmp_path, raw))
    assert len(first.config_hash()) == 16
    assert first.config_hash() == again.config_hash()
    changed = load_use_case(write_case(tmp_path, with_change(raw, "training.learning_rate", 0.001)))
    assert changed.config_hash() != first.config_hash()


def test_load_all_is_sorted_by_name(tmp_path, monkeypatch, raw):
    for name in ("zeta_case", "alpha_case", "mid_case"):
        write_case(tmp_path, {**raw, "name": name})
    (tmp_path / "notes.txt").write_text("not a use case")
    assert [c.name for c in load_all(tmp_path)] == ["alpha_case", "mid_case", "zeta_case"]
    monkeypatch.setenv("LLMOPS_USE_CASES_DIR", str(tmp_path))
    assert [c.name for c in load_all()] == ["alpha_case", "mid_case", "zeta_case"]


def test_load_all_fails_on_the_first_bad_file(tmp_path, raw):
    write_case(tmp_path, {**raw, "name": "good_case"})
    bad = write_case(tmp_path, with_change({**raw, "name": "bad_case"}, "training.batch_size", 0))
    with pytest.raises(ConfigError, match=rf"{bad}: training\.batch_size: "):
        load_all(tmp_path)


def test_a_missing_source_path_is_reported_as_source_path(tmp_path, raw):
    data = copy.deepcopy(raw)
    del data["source"]["path"]
    path = write_case(tmp_path, data)
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    assert str(exc.value) == f"{path}: source.path: a files source needs `path`"


def test_every_bad_field_is_reported_at_once(tmp_path, raw):
    data = with_change(with_change(raw, "training.epochs", -3), "gate.rules", [{"metric": "token_f1"}])
    del data["source"]["path"]
    path = write_case(tmp_path, data)
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    fields = [line.split(": ")[1] for line in str(exc.value).splitlines()]
    assert fields == ["source.path", "training.epochs", "gate.rules.0"]


def test_load_each_keeps_the_good_use_cases_and_names_the_broken_files(tmp_path, raw):
    from llmops.config import load_each

    write_case(tmp_path, raw)
    bad = write_case(tmp_path, with_change(with_change(raw, "name", "broken_case"), "training.epochs", 0))
    (tmp_path / "not yaml.yaml").write_text("name: [unclosed\n")
    good, broken = load_each(tmp_path)
    assert [c.name for c in good] == ["stackoverflow_qa"]
    assert [b.path.name for b in broken] == ["broken_case.yaml", "not yaml.yaml"]
    assert f"{bad}: training.epochs: Input should be greater than 0" in broken[0].error
    assert "is not valid YAML" in broken[1].error


def with_changes(raw: dict, **dotted) -> dict:
    """``raw`` with each ``a__b__c=value`` set (missing mappings made on the way)."""
    data = copy.deepcopy(raw)
    for key, value in dotted.items():
        *parents, last = key.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


SWEEP = {"grid": {"learning_rate": [1e-4, 2e-4]}}


def test_a_sweep_with_the_judge_is_refused_naming_both_fields(tmp_path, raw):
    """The sweep gate does not run the judge: the combination would have an approval claim a judgement none made."""
    path = write_case(tmp_path, with_changes(raw, training__sweep=SWEEP, evaluation__judge={"enabled": True}))
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: training.sweep: ") and "evaluation.judge.enabled" in msg
    # each alone loads
    assert load_use_case(write_case(tmp_path, with_changes(raw, training__sweep=SWEEP))).training.sweep is not None
    judged = load_use_case(write_case(tmp_path, with_changes(raw, evaluation__judge={"enabled": True})))
    assert judged.evaluation.judge.enabled


def test_no_shipped_use_case_sweeps_with_the_judge():
    for cfg in load_all(paths.PROJECT_ROOT / "include" / "use_cases"):
        assert not (cfg.training.sweep is not None and cfg.evaluation.judge.enabled), cfg.name


def test_the_judge_without_generated_answers_is_refused_at_load(tmp_path, raw):
    path = write_case(tmp_path, with_changes(raw, evaluation__generation_samples=0,
                                             evaluation__judge={"enabled": True}))
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: evaluation.generation_samples: ") and "evaluation.judge.enabled" in msg
    # without the judge, no generated answers is a valid choice
    plain = load_use_case(write_case(tmp_path, with_changes(raw, evaluation__generation_samples=0)))
    assert plain.evaluation.generation_samples == 0


def _task_dir(tmp_path: Path, name: str = "my_task") -> Path:
    """A copy of the shipped license_cloze task as ``<tmp>/evals/<name>.yaml`` beside its JSONL."""
    folder = tmp_path / "evals"
    folder.mkdir(exist_ok=True)
    shipped = paths.PROJECT_ROOT / "include" / "evals"
    (folder / f"{name}.jsonl").write_text((shipped / "license_cloze.jsonl").read_text())
    (folder / f"{name}.yaml").write_text((shipped / "license_cloze.yaml").read_text()
                                         .replace("license_cloze", name))
    return folder


def test_a_regression_task_given_as_a_path_loads(tmp_path, raw):
    folder = _task_dir(tmp_path)
    path = write_case(tmp_path, with_changes(raw, evaluation__regression={
        "tasks": [str(folder / "my_task.yaml"), "include/evals/license_next_words.yaml", "hellaswag"]}))
    assert load_use_case(path).evaluation.regression.tasks[0] == str(folder / "my_task.yaml")


@pytest.mark.parametrize(("breakage", "says"), [
    ("no yaml", "cannot read the task YAML"),
    ("bad yaml", "not valid YAML"),
    ("no data", "field 'dataset_kwargs.data_files.test': "),
])
def test_a_broken_local_regression_task_is_refused_at_load_naming_file_and_field(tmp_path, raw, breakage, says):
    folder = _task_dir(tmp_path)
    task = folder / "my_task.yaml"
    if breakage == "no yaml":
        task.unlink()
    elif breakage == "bad yaml":
        task.write_text(task.read_text() + "metadata: [unclosed\n")
    else:
        (folder / "my_task.jsonl").unlink()
    for entry, changes in ((str(task), {}), ("my_task", {"evals_dir": str(folder)})):
        if breakage == "no yaml" and entry == "my_task":
            continue  # a name with no YAML in evals_dir is a harness task name
        path = write_case(tmp_path, with_changes(raw, evaluation__regression={"tasks": ["hellaswag", entry],
                                                                              **changes}))
        with pytest.raises(ConfigError) as exc:
            load_use_case(path)
        msg = str(exc.value)
        assert msg.startswith(f"{path}: evaluation.regression.tasks.1: {task}"), msg
        assert says in msg


def test_the_same_regression_task_twice_is_refused(tmp_path, raw):
    path = write_case(tmp_path, with_changes(raw, evaluation__regression={
        "tasks": ["license_cloze", "include/evals/license_cloze.yaml"]}))
    with pytest.raises(ConfigError) as exc:
        load_use_case(path)
    assert str(exc.value).startswith(f"{path}: evaluation.regression.tasks: ")
    assert "license_cloze" in str(exc.value)
