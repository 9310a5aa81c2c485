"""One ``<use_case>__finetune`` DAG per include/use_cases/*.yaml: finetune -> evaluate -> gate -> register
(-> export, when the use case lists ``export: [merged, gguf]``).

Scheduled on the use case's dataset Asset: it trains on the snapshot named by the triggering event. Triggered
by hand, the Params form can pin a snapshot id (empty = the newest snapshot) and override the base model,
epochs, learning rate and LoRA rank. A rejected gate skips `register` (its log says why); the DAG still succeeds.

A use case with ``training.sweep`` gets the sweep shape instead (docs/sweeps.md): plan -> reference (base model and
champion, scored once) and finetune / evaluate mapped over the trials -> gate (best trial, Holm-Bonferroni) ->
register (the winner only); its Params form takes a ``sweep`` (JSON) that replaces the configured one for a run.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param

from llmops import names
from llmops.operators import (
    EvaluateOperator,
    FinetuneOperator,
    GateOperator,
    PreferenceTuneOperator,
    RegisterOperator,
)
from llmops.operators.common import dataset_schedule
from llmops.operators.dag_factory import use_case_dag, use_cases


def params_for(cfg) -> dict:
    return {
        "base_model": Param(cfg.base_model, type="string", title="Base model",
                            description="Hugging Face model id or local path (loaded from safetensors only)."),
        "snapshot_id": Param(None, type=["null", "string"], title="Snapshot id",  # optional in the trigger form
                             pattern=names.param_pattern(names.SNAPSHOT_ID_RE),  # the task checks it again
                             description="Pin a dataset snapshot (16 hex digits, see `llmops.cli snapshots`). "
                                         "Empty: the triggering asset event's, else newest."),
        "preference_snapshot_id": Param(None, type=["null", "string"], title="Preference snapshot id",
                                        pattern=names.param_pattern(names.SNAPSHOT_ID_RE),
                                        description="training.method dpo / kto only: pin a preference snapshot. "
                                                    "Empty: the triggering event's, else newest."),
        "epochs": Param(cfg.training.epochs, type="number", minimum=0.01, maximum=100, title="Epochs"),
        "learning_rate": Param(cfg.training.learning_rate, type="number", exclusiveMinimum=0, maximum=1,
                               title="Learning rate"),
        "lora_rank": Param(cfg.training.lora.r, type="integer", minimum=1, maximum=512, title="LoRA rank (r)"),
    } | ({"sweep": Param(None, type=["null", "object", "array", "string"], title="Sweep (JSON)",
                         description='{"grid": {"learning_rate": [1e-4, 2e-4], "lora_r": [4, 8]}} or a list of '
                                     'overrides; empty: training.sweep of the use case')} if cfg.training.sweep else {})


def sweep_tasks(cfg):
    """plan -> reference + finetune[trial] -> evaluate[trial] -> gate; returns (gate, its winner's trained and
    evaluation XComs)."""
    from llmops.operators.sweep import (
        TRIAL_NAME,
        ReferenceEvaluateOperator,
        SweepGateOperator,
        SweepPlanOperator,
        TrialEvaluateOperator,
        TrialFinetuneOperator,
    )

    trials = SweepPlanOperator(task_id="plan", use_case=cfg.name).output
    reference = ReferenceEvaluateOperator(task_id="reference", use_case=cfg.name, trials=trials)
    parallel = cfg.training.sweep.max_parallel
    trained = TrialFinetuneOperator.partial(
        task_id="finetune", use_case=cfg.name, queue=cfg.training.queue, pool=cfg.training.pool,
        map_index_template=TRIAL_NAME, max_active_tis_per_dagrun=parallel).expand_kwargs(trials)
    evaluated = TrialEvaluateOperator.partial(
        task_id="evaluate", use_case=cfg.name, map_index_template=TRIAL_NAME, trigger_rule="all_done",
        max_active_tis_per_dagrun=parallel).expand_kwargs(trials)
    trained >> evaluated
    reference >> evaluated
    decision = SweepGateOperator(task_id="gate", use_case=cfg.name, trials=trials)
    evaluated >> decision
    return decision, decision.output["trained"], decision.output["evaluation"]


for cfg in use_cases():
    with use_case_dag(cfg, "finetune", tag="finetune",
                      description=f"LoRA fine-tuning for {cfg.name}: {cfg.description}",
                      schedule=dataset_schedule(cfg), params=params_for(cfg), doc_md=__doc__):
        if cfg.training.sweep:
            decision, trained_out, evaluation_out = sweep_tasks(cfg)
        else:
            # sft: a dataset snapshot; dpo / kto: a preference snapshot, on top of the champion
            train_class = FinetuneOperator if cfg.training.method == "sft" else PreferenceTuneOperator
            trained = train_class(task_id="finetune", use_case=cfg.name, queue=cfg.training.queue,
                                  pool=cfg.training.pool)
            evaluation = EvaluateOperator(task_id="evaluate", use_case=cfg.name, trained=trained.output)
            decision = GateOperator(task_id="gate", use_case=cfg.name, evaluation=evaluation.output,
                                    trained=trained.output)
            trained_out, evaluation_out = trained.output, evaluation.output
        approval = None
        judge = cfg.evaluation.judge.enabled  # an untrusted judge hands the decision to a person
        if cfg.gate.require_approval or judge:  # a person approves in the UI before `champion` moves
            from llmops.operators.approval import PromotionApprovalOperator  # HITL: imported only when used

            approval = PromotionApprovalOperator(
                task_id="approve", use_case=cfg.name, decision=decision.output, trained=trained_out,
                always=cfg.gate.require_approval, review_pairs=3 if judge else 0,
                response_timeout=timedelta(hours=cfg.gate.approval_timeout_hours)
                if cfg.gate.approval_timeout_hours else None)
        register_class = RegisterOperator
        if cfg.training.sweep:
            from llmops.operators.sweep import SweepRegisterOperator as register_class
        register = register_class(task_id="register", use_case=cfg.name, decision=decision.output,
                                  trained=trained_out, evaluation=evaluation_out,
                                  approval=approval.output if approval else None,
                                  trigger_rule="none_failed" if approval else "all_success")
        if approval:
            decision >> approval >> register
        if cfg.export:  # merged / GGUF exports of the version just registered (skipped with `register`)
            from llmops.operators.export import ExportOperator

            ExportOperator(task_id="export", use_case=cfg.name, registered=register.output, kinds=cfg.export)
