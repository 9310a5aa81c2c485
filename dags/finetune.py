"""One ``<use_case>__finetune`` DAG per include/use_cases/*.yaml: finetune -> evaluate -> gate -> register
(-> export, when the use case lists ``export: [merged, gguf]``).

Scheduled on the use case's dataset Asset: it trains on the snapshot named by the triggering event. Triggered
by hand, the Params form can pin a snapshot id (empty = the newest snapshot) and override the base model,
epochs, learning rate and LoRA rank. A rejected gate skips `register` (its log says why); the DAG still succeeds.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param

from llmops import names
from llmops.operators import EvaluateOperator, FinetuneOperator, GateOperator, RegisterOperator
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
        "epochs": Param(cfg.training.epochs, type="number", minimum=0.01, maximum=100, title="Epochs"),
        "learning_rate": Param(cfg.training.learning_rate, type="number", exclusiveMinimum=0, maximum=1,
                               title="Learning rate"),
        "lora_rank": Param(cfg.training.lora.r, type="integer", minimum=1, maximum=512, title="LoRA rank (r)"),
    }


for cfg in use_cases():
    with use_case_dag(cfg, "finetune", tag="finetune", description=f"LoRA fine-tuning for {cfg.name}: {cfg.description}",
                      schedule=dataset_schedule(cfg), params=params_for(cfg), doc_md=__doc__):
        trained = FinetuneOperator(task_id="finetune", use_case=cfg.name, queue=cfg.training.queue,
                                   pool=cfg.training.pool)
        evaluation = EvaluateOperator(task_id="evaluate", use_case=cfg.name, trained=trained.output)
        decision = GateOperator(task_id="gate", use_case=cfg.name, evaluation=evaluation.output, trained=trained.output)
        approval = None
        judge = cfg.evaluation.judge.enabled  # an untrusted judge hands the decision to a person
        if cfg.gate.require_approval or judge:  # a person approves in the UI before `champion` moves
            from llmops.operators.approval import PromotionApprovalOperator  # HITL: imported only when used

            approval = PromotionApprovalOperator(
                task_id="approve", use_case=cfg.name, decision=decision.output, trained=trained.output,
                always=cfg.gate.require_approval, review_pairs=3 if judge else 0,
                response_timeout=timedelta(hours=cfg.gate.approval_timeout_hours)
                if cfg.gate.approval_timeout_hours else None)
        register = RegisterOperator(task_id="register", use_case=cfg.name, decision=decision.output,
                                    trained=trained.output, evaluation=evaluation.output,
                                    approval=approval.output if approval else None,
                                    trigger_rule="none_failed" if approval else "all_success")
        if approval:
            decision >> approval >> register
        if cfg.export:  # merged / GGUF exports of the version just registered (skipped with `register`)
            from llmops.operators.export import ExportOperator

            ExportOperator(task_id="export", use_case=cfg.name, registered=register.output, kinds=cfg.export)
