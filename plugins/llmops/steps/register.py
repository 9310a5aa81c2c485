"""The register step: why a run is not registered, the version's lineage tags, and the registration itself
(the adapter uploaded to the run as an MLflow model, version created, aliases set, run ended), recorded in the run
summary."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.errors import NothingToDo
from llmops.payloads import Decision, Evaluation, Registered, Trained

log = logging.getLogger(__name__)

TAG_METRICS = ("eval_loss", "perplexity", "exact_match", "token_f1", "rouge_l", "unsafe_rate", "recitation_rate")
LINEAGE_TAGS = ("snapshot_id", "dag_run_id", "base_model", "base_model_revision", "prompt_template_hash",
                "config_hash", "code_version")


def refusal_reasons(decision: Decision) -> list[str]:
    """Empty when the gate passed; else the failed rules (fail-closed: a gate without rules never passes).
    A person's Reject never gets here: the approval task skips ``register`` itself."""
    if decision.passed:
        return []
    return decision.failed_reasons or ["no gate rules (fail-closed)"]


def version_tags(cfg: UseCaseConfig, adapter_meta: dict, evaluation: Evaluation, decision: Decision,
                 approval: dict | None = None) -> dict:
    """Lineage (snapshot, DAG run, base model and revision, template, config and code), the challenger's
    metrics, the gate's reference and compared champion, the report, and who approved."""
    challenger = evaluation.metrics["challenger"]
    tags = {k: adapter_meta.get(k, "") for k in LINEAGE_TAGS}
    tags["training_method"] = adapter_meta.get("training_method") or "sft"
    for k in ("preference_snapshot_id", "reference_version"):  # preference tuning (dpo / kto) only
        if adapter_meta.get(k):
            tags[k] = str(adapter_meta[k])
    tags.update({f"metric.{k}": f"{challenger[k]:.6g}" for k in TAG_METRICS if k in challenger})
    tags.update({"use_case": cfg.name, "gate.reference": decision.reference,
                 "gate.compared_champion": evaluation.champion_version or "", "eval_report": decision.report_artifact})
    if approval:
        tags["approved_by"] = str(approval.get("responded_by_user"))
    return tags


def serving_prepare(cfg: UseCaseConfig):
    """With ``serving.engine: vllm``, what makes a version servable before an alias names it
    (:func:`llmops.serving.vllm_checks.prepare_version`); nothing for the embedded engine."""
    if cfg.serving.engine != "vllm":
        return None
    from llmops.serving.vllm_checks import prepare_version

    return lambda version: prepare_version(cfg, version)


def register_trained(cfg: UseCaseConfig, trained: Trained, evaluation: Evaluation, decision: Decision,
                     approval: dict | None = None) -> dict:
    """Upload the adapter to the run, create the model version with its tags, move the aliases, end the run.
    Idempotent: a retried or racing registration of the same run converges on one version."""
    import json
    from pathlib import Path

    from llmops import mlflow_model, registry, tracking
    from llmops.content_hash import folder_digest
    from llmops.model.identity import IDENTITY_KEY, portable_adapter
    from llmops.model.loading import adapter_metadata

    # An MLflow model (MLmodel, adapter only, the base named by identity: no path of this host), in the run's folder.
    staging = Path(trained.adapter_dir).parent / "registered"
    adapter = portable_adapter(trained.adapter_dir, staging / "adapter")
    tracking.log_artifacts(trained.mlflow_run_id, adapter, "adapter")  # the run's adapter files, as before
    tracking.log_artifacts(trained.mlflow_run_id, mlflow_model.save(adapter, staging / "model"),
                           mlflow_model.ARTIFACT_PATH)
    tags = version_tags(cfg, adapter_metadata(trained.adapter_dir), evaluation, decision, approval)
    tags["base_model_identity"] = json.dumps(adapter_metadata(adapter)[IDENTITY_KEY], sort_keys=True)
    # what the API checks the files it downloads against (the same files are in the model's artifacts/adapter)
    tags[registry.ADAPTER_DIGEST_TAG] = folder_digest(adapter)
    result = registry.register_adapter(cfg.model_name, run_id=trained.mlflow_run_id,
                                       artifact_path=mlflow_model.ARTIFACT_PATH, tags=tags,
                                       promote=cfg.gate.promote_to_champion, description=cfg.description,
                                       before_aliases=serving_prepare(cfg))
    tracking.end_run(trained.mlflow_run_id)
    return result


def register(cfg: UseCaseConfig, trained: Trained, evaluation: Evaluation, decision: Decision,
             approval: dict | None = None, *, run_id: str) -> Registered:
    """Register the adapter when the gate passed. A rejected gate records why in the run summary, ends the MLflow
    run and raises :class:`NothingToDo` with the reasons (the task is skipped; the champion stays)."""
    from llmops import tracking
    from llmops.runs import record_step

    reasons = refusal_reasons(decision)
    if not reasons and decision.details.get("needs_approval") and not approval:
        reasons = [f"a person must decide ({decision.details.get('approval_reason')}) and no approval was given"]
    if reasons:
        record_step(cfg.name, run_id, "register", {"registered": False, "reasons": reasons})
        tracking.end_run(trained.mlflow_run_id)
        raise NothingToDo("not registered, champion unchanged: " + "; ".join(reasons))
    result = register_trained(cfg, trained, evaluation, decision, approval)
    record_step(cfg.name, run_id, "register", {"registered": True, **result})
    log.info("registered %s version %s with aliases %s", result["name"], result["version"], result["aliases"])
    return Registered.from_xcom(result)
