"""The batch_predict step: the current `champion` over ``serving.batch_input``, a versioned, idempotent output."""

from __future__ import annotations

from llmops.config import UseCaseConfig
from llmops.payloads import Predictions
from llmops.steps.champion import champion_model


def batch_predict(cfg: UseCaseConfig, *, max_rows: int | None = None) -> Predictions:
    """Predictions of the champion for the batch input (see :func:`llmops.serving.batch.predict_batch`)."""
    from llmops.serving.batch import predict_batch

    with champion_model(cfg, "predict with") as (model, version):
        return Predictions.from_xcom(predict_batch(cfg, model, version, max_rows=max_rows))
