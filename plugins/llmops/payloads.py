"""The XCom payloads between the finetune DAG's tasks, one typed definition each.

``finetune`` returns a :class:`Trained`, ``evaluate`` an :class:`Evaluation`, ``gate`` a :class:`Decision`. On
XCom they travel as plain JSON dicts with exactly these keys (plus a step's own details), so the Airflow UI,
extra links and lineage read them as before; the consumers read them back with ``from_xcom``, which names any
missing key instead of failing on a ``KeyError`` deep inside a task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

from llmops.errors import LLMOpsError


@dataclass(frozen=True)
class _Payload:
    details: dict = field(default_factory=dict)  # the step's other outputs, kept as they were returned

    REQUIRED: ClassVar[tuple[str, ...]] = ()  # class attribute (not a field): the keys a consumer cannot do without

    @classmethod
    def from_xcom(cls, data: dict | None):
        if isinstance(data, cls):
            return data
        data = dict(data or {})
        missing = [k for k in cls.REQUIRED if data.get(k) is None]
        if missing:
            raise LLMOpsError(f"{cls.__name__} payload from the upstream task lacks {missing}")
        known = [f.name for f in fields(cls) if f.name != "details"]
        return cls(**{k: data.pop(k) for k in known if k in data}, details=data)

    def to_xcom(self) -> dict:
        out = asdict(self)
        return {**out.pop("details"), **out}


@dataclass(frozen=True)
class Trained(_Payload):
    """What ``finetune`` produced: the adapter, the snapshot it was trained on, the run's MLflow run."""

    snapshot_id: str = field(default=None)  # type: ignore[assignment]
    mlflow_run_id: str = field(default=None)  # type: ignore[assignment]
    adapter_dir: str = field(default=None)  # type: ignore[assignment]
    base_model: str = field(default=None)  # type: ignore[assignment]
    snapshot_reason: str = ""

    REQUIRED: ClassVar[tuple[str, ...]] = ("snapshot_id", "mlflow_run_id", "adapter_dir", "base_model")


@dataclass(frozen=True)
class Evaluation(_Payload):
    """What ``evaluate`` measured: metrics per candidate, the per-example results file, the champion compared."""

    metrics: dict = field(default=None)  # type: ignore[assignment]
    results: str = field(default=None)  # type: ignore[assignment]
    champion_version: str | None = None
    rows: dict = field(default_factory=dict)

    REQUIRED: ClassVar[tuple[str, ...]] = ("metrics",)  # the gate also reads `results` (the per-example file)


@dataclass(frozen=True)
class Decision(_Payload):
    """What ``gate`` decided: every rule's outcome, the verdict, the report."""

    passed: bool = field(default=None)  # type: ignore[assignment]
    rules: list = field(default_factory=list)
    reasons: list = field(default_factory=list)
    reference: str = ""
    champion_version: str | None = None
    text: str = ""
    report: str = ""
    report_artifact: str = ""

    REQUIRED: ClassVar[tuple[str, ...]] = ("passed", "rules")

    @property
    def failed_reasons(self) -> list[str]:
        return [r["reason"] for r in self.rules if not r["passed"]]
