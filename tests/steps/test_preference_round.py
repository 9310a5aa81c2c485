"""A preference round on the tiny model through the real steps (preference_tune -> evaluate -> gate -> register,
a real MLflow registry): DPO on separable synthetic preferences (every chosen answer opens with one marker,
every rejected one with the other, on every prompt) raises the held-out preference accuracy with its interval
clear of the champion's, and the gate's default dpo rules register the version; DPO on shuffled preferences
(the same pairs, which side is chosen arbitrary and balanced in each split) gains nothing on the held-out pairs and
the gate rejects it. Also: the trainer receives ``training.dpo``'s rate and beta, never the supervised ones."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from llmops.config import load_use_case
from llmops.data import preferences
from llmops.errors import NothingToDo

SETTINGS = {"evaluation.max_eval_rows": 12, "evaluation.generation_samples": 3, "evaluation.max_new_tokens": 6,
            "evaluation.batch_size": 12, "training.max_seq_len": 64, "training.batch_size": 8,
            "training.learning_rate": 0.5, "training.epochs": 9, "training.method": "dpo",
            "training.dpo.learning_rate": 5e-4, "training.dpo.epochs": 2, "training.dpo.beta": 0.1,
            "training.dpo.max_eval_loss_increase": 0.1,
            "feedback.eval_fraction": 0.35, "training.checkpoint_every_steps": 0, "training.queue": "default",
            "training.pool": "default_pool", "gate.rules": [{"metric": "unsafe_rate", "max": 1.0}]}
# the tiny model is randomly initialised: a higher rate than a pretrained model's default moves it, and its eval
# loss on documented answers moves with it (the answers' first tokens follow the markers): 10 % allowed
MARKS = ("Yes.", "No.")


@pytest.fixture
def cfg(use_case_file, tiny_model_dir):
    return load_use_case(use_case_file(changes={"base_model": str(tiny_model_dir), **SETTINGS}))


def _champion(cfg, sample_rows, adapters, tiny_model_dir) -> str:
    from llmops import registry, tracking
    from llmops.data.snapshots.handle import Snapshots

    dataset = Snapshots.of(cfg).write_frame(sample_rows.head(120), source={"kind": "test"},
                                            validation={"success": True})
    run = tracking.run_for_dag_run(cfg.name, "champion_run")
    tracking.log_artifacts(run, adapters["champion"], "adapter")
    return registry.register_adapter(cfg.model_name, run_id=run, artifact_path="adapter", promote=True, tags={
        "snapshot_id": dataset["snapshot_id"], "base_model": str(tiny_model_dir)})["version"]


def _pairs(cfg, sample_rows, tiny_model_dir, adapters, *, shuffled: bool) -> pd.DataFrame:
    """One pair per prompt: the same answer behind two markers. Separable: the marker the champion likes less is
    always chosen; shuffled: in each split, half the pairs one way, half the other."""
    from llmops.evaluate.preferences import pair_margins
    from llmops.model import loading
    from llmops.prompts import load_template

    rows = sample_rows.iloc[200:272].reset_index(drop=True)
    frame = pd.DataFrame({"prompt": rows["prompt"], "answer": rows["response"].str.slice(0, 60)})
    probe = frame.head(8).assign(completion=lambda f: MARKS[0] + " " + f["answer"],
                                 rejected=lambda f: MARKS[1] + " " + f["answer"])
    model, tok = loading.load_base(str(tiny_model_dir))
    model = loading.load_adapter(model, adapters["champion"])
    liked = pair_margins(model, tok, load_template(cfg.prompt_template), probe, max_len=64).mean() > 0
    good, bad = (MARKS[1], MARKS[0]) if liked else MARKS  # chosen: the marker the champion does not prefer
    side = frame["prompt"].map(lambda p: preferences.split_of(cfg, p))
    flip = side.groupby(side).cumcount() % 2 == 1 if shuffled else pd.Series(False, index=frame.index)
    chosen = flip.map({False: good, True: bad}) + " " + frame["answer"]
    rejected = flip.map({False: bad, True: good}) + " " + frame["answer"]
    keys = [preferences._key("pair", p, c, r, True) for p, c, r in zip(frame["prompt"], chosen, rejected, strict=True)]
    return pd.DataFrame({"key": keys, "kind": "pair",
                         "prompt": frame["prompt"], "completion": chosen, "rejected": rejected, "label": True,
                         "versions": "1", "ids": [f"id{i}" for i in range(len(frame))]})


def _round(cfg, pairs: pd.DataFrame, run_id: str):
    from llmops.steps.evaluate import evaluate
    from llmops.steps.gate import run_gate
    from llmops.steps.preference_tune import run_preference_tune
    from llmops.steps.register import register

    snap = preferences.preference_snapshots(cfg).write_frame(pairs, source={"kind": "test"},
                                                             validation={"success": True}, parents=[])
    trained = run_preference_tune(cfg, params={"preference_snapshot_id": snap["snapshot_id"]}, event_extras=[],
                                  run_id=run_id)
    assert trained.details["train_rows"] == snap["rows"]["train"]  # the held-out pairs were not trained on
    evaluation = evaluate(cfg, trained, run_id=run_id)
    decision = run_gate(cfg, evaluation, trained, run_id=run_id)
    try:
        registered = register(cfg, trained, evaluation, decision, run_id=run_id)
    except NothingToDo:
        registered = None
    return trained, evaluation, decision, registered


def test_dpo_on_separable_preferences_passes_the_gate_and_on_shuffled_ones_does_not(
        cfg, sample_rows, tiny_model_dir, adapters):
    _champion(cfg, sample_rows, adapters, tiny_model_dir)
    figures = {}
    for kind in ("shuffled", "separable"):  # shuffled first: rejected, the champion stays for the second
        pairs = _pairs(cfg, sample_rows, tiny_model_dir, adapters, shuffled=kind == "shuffled")
        trained, evaluation, decision, registered = _round(cfg, pairs, f"dpo_{kind}")
        m = evaluation.metrics
        results = json.loads(open(evaluation.results).read())
        ci = results["preferences"]["intervals"]["vs_champion"]["preference_accuracy"]
        figures[kind] = {n: round(m[n]["preference_accuracy"], 3) for n in m} | {"ci": (ci["low"], ci["high"])}
        rules = {r["metric"]: r for r in decision.rules}
        assert set(rules) == {"preference_accuracy", "eval_loss", "token_f1", "unsafe_rate"}, rules
        assert rules["eval_loss"]["margin"] < 0  # non-inferiority, stated in the rule and its reason
        print(kind, "\n".join(decision.reasons))
        assert trained.details["reference_version"] == "1"
        if kind == "separable":
            assert m["challenger"]["preference_accuracy"] > m["champion"]["preference_accuracy"] + 0.3, figures
            assert ci["low"] > 0.01 and rules["preference_accuracy"]["passed"], decision.reasons
            assert decision.passed and registered is not None, decision.reasons
            assert m["challenger"]["reward_accuracy"] > 0.5 and m["champion"]["reward_accuracy"] == 0.0
        else:
            assert abs(m["champion"]["preference_accuracy"] - 0.5) < 0.05  # balanced: a marker-only model is at 1/2
            assert not rules["preference_accuracy"]["passed"], (figures, decision.reasons)
            assert not decision.passed and registered is None
    print("held-out preference accuracy (base, champion, challenger; 95% CI of the gain):", figures)


def test_the_trainer_gets_the_methods_rate_not_the_supervised_one(cfg, sample_rows, tiny_model_dir, adapters,
                                                                 tmp_path):
    from transformers import TrainerCallback

    from llmops.prompts import load_template
    from llmops.train.preference import preference_tune

    seen = {}

    class Record(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.update(lr=args.learning_rate, beta=args.beta, loss_type=args.loss_type, epochs=args.num_train_epochs)

    training = cfg.training.model_copy(update={"dpo": cfg.training.dpo.model_copy(update={"loss_type": "ipo"})})
    pairs = _pairs(cfg, sample_rows, tiny_model_dir, adapters, shuffled=False).head(8)
    done = preference_tune(pairs, method="dpo", base_model=str(tiny_model_dir), revision=None,
                           template=load_template(cfg.prompt_template), training=training, out_dir=tmp_path,
                           metadata={}, reference_adapter=adapters["champion"], callbacks=[Record()])
    assert seen == {"lr": 5e-4, "beta": 0.1, "loss_type": ["ipo"], "epochs": 2.0}, seen
    assert cfg.training.learning_rate == 0.5 and done["steps"] == 2  # 8 pairs, batch 8, 2 epochs
