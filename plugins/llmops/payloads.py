"""The XCom payloads between the pipeline's tasks, one typed definition per step (:mod:`llmops.steps`).

``ingest`` returns a :class:`Staged`, ``validate`` a :class:`Validation`, ``snapshot`` a :class:`Snapshot`, the
feedback DAG's ``preferences`` a :class:`Preferences`,
``finetune`` a :class:`Trained`, ``evaluate`` an :class:`Evaluation`, ``gate`` a :class:`Decision`, ``register``
a :class:`Registered`, ``export`` an :class:`Exported`, ``rollback`` a :class:`RolledBack`, ``batch_predict`` a
:class:`Predictions`, the monitoring check a :class:`ServingFigures`, ``compare_prompts`` a :class:`PromptComparison`,
and the index DAG's
steps a :class:`CorpusSnapshot`, :class:`IndexBuilt`, :class:`RetrievalEvaluated`, :class:`IndexDecision` and
:class:`IndexPublished`. On XCom they travel
as plain JSON with exactly these keys (plus a step's own details), so the Airflow UI, extra links and lineage
read them as before; the consumers read them back with ``from_xcom``, which refuses a payload without a key it
needs with a :class:`~llmops.errors.PayloadError` naming the key and the task that made it (a retry of the
consumer cannot heal it, so it fails for good).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

from llmops.errors import PayloadError


@dataclass(frozen=True)
class _Payload:
    details: dict = field(default_factory=dict)  # the step's other outputs, kept as they were returned

    REQUIRED: ClassVar[tuple[str, ...]] = ()  # class attribute (not a field): the keys a consumer cannot do without
    TASK: ClassVar[str] = ""  # the task that makes this payload, named when a key is missing

    @classmethod
    def from_xcom(cls, data: dict | None):
        if isinstance(data, cls):
            return data
        data = dict(data or {})
        missing = [k for k in cls.REQUIRED if data.get(k) is None]
        if missing:
            raise PayloadError(f"{cls.__name__} payload from the upstream task '{cls.TASK}' lacks {missing}")
        known = [f.name for f in fields(cls) if f.name != "details"]
        return cls(**{k: data.pop(k) for k in known if k in data}, details=data)

    def to_xcom(self) -> dict:
        out = asdict(self)
        return {**out.pop("details"), **out}


@dataclass(frozen=True)
class Staged(_Payload):
    """What ``ingest`` staged: the Parquet file of prepared rows, how many, read from where, for which partition."""

    uri: str = field(default=None)  # type: ignore[assignment]
    rows: int = 0
    source: dict = field(default=None)  # type: ignore[assignment]
    steps: list = field(default_factory=list)
    partition_key: str | None = None
    interval: dict | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("uri", "source")
    TASK: ClassVar[str] = "ingest"


@dataclass(frozen=True)
class Validation(_Payload):
    """What ``validate`` found: the suite's outcome (counts, failed expectations in ``details``) and its report."""

    success: bool = field(default=None)  # type: ignore[assignment]
    report: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("success",)
    TASK: ClassVar[str] = "validate"

    def summary(self) -> dict:
        """The validation summary without its report path (what the snapshot manifest keeps)."""
        return {k: v for k, v in self.to_xcom().items() if k != "report"}


@dataclass(frozen=True)
class Snapshot(_Payload):
    """What ``snapshot`` wrote (or found already written): the dataset Asset event's ``extra``."""

    snapshot_id: str = field(default=None)  # type: ignore[assignment]
    uri: str = field(default=None)  # type: ignore[assignment]
    rows: dict = field(default_factory=dict)
    interval: dict | None = None
    partition_key: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("snapshot_id", "uri")
    TASK: ClassVar[str] = "snapshot"


@dataclass(frozen=True)
class Preferences(_Payload):
    """What the feedback DAG's ``preferences`` task wrote (or found already written): the preference snapshot,
    what it was built from, and its counts; the preference Asset event's ``extra``. An event written before this
    payload existed (a :class:`Snapshot` with ``details["kind"] == "preferences"``) reads back as one too: it
    carries ``preference_snapshot_id`` and ``uri``, its other keys land in ``details``."""

    preference_snapshot_id: str = field(default=None)  # type: ignore[assignment]
    uri: str = field(default=None)  # type: ignore[assignment]
    rows: dict = field(default_factory=dict)
    interval: dict | None = None
    partition_key: str | None = None
    counts: dict = field(default_factory=dict)  # feedback lines read, pairs and single ratings kept
    model_versions: list = field(default_factory=list)
    inputs: list = field(default_factory=list)  # the prediction logs and feedback files read (local paths)
    eval_snapshot_id: str | None = None  # the dataset snapshot whose eval prompts were held out
    eval_snapshot_uri: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("preference_snapshot_id", "uri")
    TASK: ClassVar[str] = "preferences"


@dataclass(frozen=True)
class Trained(_Payload):
    """What ``finetune`` produced: the adapter, the snapshot it was trained on, the run's MLflow run."""

    snapshot_id: str = field(default=None)  # type: ignore[assignment]
    mlflow_run_id: str = field(default=None)  # type: ignore[assignment]
    adapter_dir: str = field(default=None)  # type: ignore[assignment]
    base_model: str = field(default=None)  # type: ignore[assignment]
    snapshot_reason: str = ""

    REQUIRED: ClassVar[tuple[str, ...]] = ("snapshot_id", "mlflow_run_id", "adapter_dir", "base_model")
    TASK: ClassVar[str] = "finetune"


@dataclass(frozen=True)
class Evaluation(_Payload):
    """What ``evaluate`` measured: metrics per candidate, the per-example results file, the champion compared."""

    metrics: dict = field(default=None)  # type: ignore[assignment]
    results: str = field(default=None)  # type: ignore[assignment]
    champion_version: str | None = None
    rows: dict = field(default_factory=dict)

    REQUIRED: ClassVar[tuple[str, ...]] = ("metrics",)  # the gate also reads `results` (the per-example file)
    TASK: ClassVar[str] = "evaluate"


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
    TASK: ClassVar[str] = "gate"

    @property
    def failed_reasons(self) -> list[str]:
        return [r["reason"] for r in self.rules if not r["passed"]]


@dataclass(frozen=True)
class Registered(_Payload):
    """What ``register`` did: the model version, its aliases and the champion it replaced (if it moved)."""

    name: str = field(default=None)  # type: ignore[assignment]
    version: str = field(default=None)  # type: ignore[assignment]
    aliases: list = field(default_factory=list)
    alias: str = ""
    previous_champion: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("name", "version")
    TASK: ClassVar[str] = "register"


@dataclass(frozen=True)
class Exported(_Payload):
    """What ``export`` did: per export (``merged``, ``gguf-f16``, ...) its status, sha256, size and artifact URI."""

    name: str = field(default=None)  # type: ignore[assignment]
    version: str = field(default=None)  # type: ignore[assignment]
    exports: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    REQUIRED: ClassVar[tuple[str, ...]] = ("name", "version")
    TASK: ClassVar[str] = "export"


@dataclass(frozen=True)
class RolledBack(_Payload):
    """What ``rollback`` did: the version that is champion now, the one it replaced, whether the alias moved."""

    name: str = field(default=None)  # type: ignore[assignment]
    version: str = field(default=None)  # type: ignore[assignment]
    from_version: str | None = None
    moved: bool = False
    alias: str = "champion"

    REQUIRED: ClassVar[tuple[str, ...]] = ("name", "version")
    TASK: ClassVar[str] = "rollback"


@dataclass(frozen=True)
class Predictions(_Payload):
    """What ``batch_predict`` wrote: the output manifest (model version, input files, rows, blocked, output URI)."""

    model_name: str = field(default=None)  # type: ignore[assignment]
    model_version: str = field(default=None)  # type: ignore[assignment]
    uri: str = field(default=None)  # type: ignore[assignment]
    rows: int = 0
    blocked: int = 0
    input_files: list = field(default_factory=list)

    REQUIRED: ClassVar[tuple[str, ...]] = ("model_name", "model_version", "uri")
    TASK: ClassVar[str] = "batch_predict"


@dataclass(frozen=True)
class ServingFigures(_Payload):
    """What the monitoring check measured for one day, the thresholds crossed, and the report."""

    figures: dict = field(default=None)  # type: ignore[assignment]
    report: str = ""
    breaches: list = field(default_factory=list)

    REQUIRED: ClassVar[tuple[str, ...]] = ("figures",)
    TASK: ClassVar[str] = "check_serving"

    def to_xcom(self) -> dict:
        return {"figures": self.figures, "report": self.report}  # a crossed threshold fails the task instead


@dataclass(frozen=True)
class PromptComparison(_Payload):
    """What ``compare_prompts`` measured: one row per template (its XCom is that list of rows), and the report."""

    rows: list = field(default=None)  # type: ignore[assignment]
    report: str = ""
    version: str = ""

    REQUIRED: ClassVar[tuple[str, ...]] = ("rows",)
    TASK: ClassVar[str] = "compare_prompts"

    def to_xcom(self) -> list:  # type: ignore[override]
        return self.rows


# ---- the index DAG (llmops.steps.index)


@dataclass(frozen=True)
class CorpusSnapshot(_Payload):
    """The index DAG's corpus snapshot: its id and how many documents."""

    snapshot_id: str = field(default=None)  # type: ignore[assignment]
    documents: int = 0

    REQUIRED: ClassVar[tuple[str, ...]] = ("snapshot_id",)
    TASK: ClassVar[str] = "corpus"


@dataclass(frozen=True)
class IndexBuilt(_Payload):
    """An index version of a corpus snapshot: passages, how many embedded now and reused, whether written."""

    index_id: str = field(default=None)  # type: ignore[assignment]
    snapshot_id: str = ""
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    written: bool = False

    REQUIRED: ClassVar[tuple[str, ...]] = ("index_id",)
    TASK: ClassVar[str] = "build"


@dataclass(frozen=True)
class RetrievalEvaluated(_Payload):
    """bm25, dense and hybrid metrics of an index version, and the MLflow run that holds them."""

    index_id: str = field(default=None)  # type: ignore[assignment]
    metrics: dict = field(default_factory=dict)
    mlflow_run_id: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("index_id",)
    TASK: ClassVar[str] = "evaluate"


@dataclass(frozen=True)
class IndexDecision(_Payload):
    """The retrieval gate's decision on an index version against the live one."""

    index_id: str = field(default=None)  # type: ignore[assignment]
    passed: bool = False
    reasons: list = field(default_factory=list)
    live: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("index_id", "passed")
    TASK: ClassVar[str] = "gate"


@dataclass(frozen=True)
class IndexPublished(_Payload):
    """Whether ``live`` moved to the index version, and from which."""

    index_id: str = field(default=None)  # type: ignore[assignment]
    moved: bool = False
    previous: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("index_id",)
    TASK: ClassVar[str] = "publish"
