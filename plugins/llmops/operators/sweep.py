"""The sweep's operators (thin, over :mod:`llmops.steps.sweep` and :mod:`llmops.steps.sweep_gate`): plan the
trials, score the references once, train and score each trial (mapped with ``expand_kwargs``, one map index per
trial named by ``map_index_template``), gate the best, register the winner."""

from __future__ import annotations

from llmops.operators.base import UseCaseOperator
from llmops.operators.links import MLflowRunLink
from llmops.operators.register import RegisterOperator
from llmops.operators.training import FinetuneOperator
from llmops.payloads import Decision, Evaluation, Trained, _Payload

TRIAL_NAME = "{{ task.trial['name'] }}"  # the map index's name: the trial's, e.g. lr=0.0002,r=8


class _Plain(_Payload):
    """A step's plain dict as a payload (the references' scores)."""


class _Trials(list):
    def to_xcom(self):
        return list(self)


class SweepPlanOperator(UseCaseOperator):
    """The trials of this DAG run (``sweep`` Param, else ``training.sweep``) on one chosen snapshot."""

    ui_color = "#f3e8fd"

    def run_step(self, context, cfg):
        from llmops.steps.sweep import plan

        events = [e.extra or {} for evs in (context.get("triggering_asset_events") or {}).values() for e in evs]
        return _Trials(plan(cfg, params=context["params"], event_extras=events, run_id=context["run_id"]))


class ReferenceEvaluateOperator(UseCaseOperator):
    """The base model and the champion scored once per DAG run, shared by every trial."""

    payload_fields = ("trials",)
    ui_color = "#fdfbe8"

    def __init__(self, *, use_case: str, trials, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.trials = trials

    def run_step(self, context, cfg):
        from llmops.steps.sweep import evaluate_references

        return _Plain(details=evaluate_references(cfg, list(self.trials), run_id=context["run_id"]))


class TrialFinetuneOperator(FinetuneOperator):
    """One trial's LoRA fine-tuning: its overrides, its folder (own checkpoints: a retry resumes), its MLflow run."""

    other_template_fields = ("trial",)

    def __init__(self, *, use_case: str, trial: dict, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.trial = trial

    def run_step(self, context, cfg):
        from llmops.steps.finetune import run_finetune

        return run_finetune(cfg, params=context["params"], event_extras=[], run_id=context["run_id"],
                            try_number=getattr(context.get("ti"), "try_number", 1) or 1, trial=self.trial)


class TrialEvaluateOperator(UseCaseOperator):
    """One trial's adapter scored on the references' rows; skipped (named) when its training failed."""

    other_template_fields = ("trial",)
    ui_color = "#fdfbe8"
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, use_case: str, trial: dict, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.trial = trial

    def run_step(self, context, cfg):
        from llmops.steps.sweep import evaluate_trial, trained_of

        trained = trained_of(cfg, self.trial, run_id=context["run_id"])
        return evaluate_trial(cfg, self.trial, trained, run_id=context["run_id"])


class SweepGateOperator(UseCaseOperator):
    """The best finished trial gated with Holm-Bonferroni over the trials; pushes the winner's ``trained`` and
    ``evaluation`` (XCom keys) for ``register``. All trials failed: the task fails."""

    payload_fields = ("trials",)
    ui_color = "#fde8e8"

    def __init__(self, *, use_case: str, trials, **kwargs):
        kwargs.setdefault("trigger_rule", "all_done")  # runs after failed trials too; it names them
        super().__init__(use_case=use_case, **kwargs)
        self.trials = trials

    def run_step(self, context, cfg):
        from llmops.run_note import set_run_note
        from llmops.steps.sweep_gate import run_sweep_gate

        decision, trained, evaluation = run_sweep_gate(cfg, list(self.trials), run_id=context["run_id"])
        context["ti"].xcom_push(key="trained", value=trained.to_xcom())
        context["ti"].xcom_push(key="evaluation", value=evaluation.to_xcom())
        dag_run = context.get("dag_run")
        if dag_run is not None:
            set_run_note(dag_run.dag_id, dag_run.run_id, decision.text)
        return decision


class SweepRegisterOperator(RegisterOperator):
    """Register the sweep's winner (at most one version per DAG run)."""

    def run_step(self, context, cfg):
        from llmops.operators.common import model_asset
        from llmops.steps.sweep_gate import register_winner

        result = register_winner(cfg, Trained.from_xcom(self.trained), Evaluation.from_xcom(self.evaluation),
                                 Decision.from_xcom(self.decision), self.approval, run_id=context["run_id"])
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result.name, "version": result.version, "alias": result.alias, "aliases": result.aliases,
        }
        return result
