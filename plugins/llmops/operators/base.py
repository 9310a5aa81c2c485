"""The base of every use-case task: ``use_case`` and the upstream payloads as template fields, the use case's
config parsed once per try, one plain step function called, its typed payload pushed, and OpenLineage.

A subclass names its upstream payload fields (``payload_fields``) and any other template fields
(``other_template_fields``), and implements ``run_step(context, cfg)``: it calls one function of
:mod:`llmops.steps` and returns its payload. :meth:`UseCaseOperator.execute` parses the config at the start of
the try (the lineage hooks of the same try reuse it), turns :class:`~llmops.errors.NothingToDo` into a skip and a
:class:`~llmops.errors.PermanentError` into a failure without retry, keeps the payload for the lineage hooks and
returns its XCom form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from airflow.sdk import BaseOperator

from llmops.operators import common
from llmops.operators.lineage import ReportsLineage


class UseCaseOperator(ReportsLineage, BaseOperator):
    """One pipeline step of one use case."""

    payload_fields: ClassVar[tuple[str, ...]] = ()  # the upstream payloads (rendered from XCom): template fields
    other_template_fields: ClassVar[tuple[str, ...]] = ()
    template_fields: Sequence[str] = ("use_case",)

    _config = None
    _config_try = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.template_fields = ("use_case", *cls.payload_fields, *cls.other_template_fields)

    def __init__(self, *, use_case: str, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case

    @property
    def config(self):
        """The use case's config of this try (parsed on first use: at the start of ``execute``, or by the START
        lineage hook when that runs first in the same process)."""
        if self._config is None:
            self._config = common.load_config(self.use_case)
        return self._config

    def execute(self, context):
        try_number = getattr(context.get("ti"), "try_number", None)
        if self._config_try is not None and self._config_try != try_number:
            self._config = None  # a new try of the same task object: the file may have been fixed
        self._config_try = try_number
        cfg = self.config
        with common.step_errors():
            payload = self.run_step(context, cfg)
        self.lineage_result = payload
        return payload.to_xcom()

    def run_step(self, context, cfg):
        """Call the step function and return its typed payload (:mod:`llmops.payloads`)."""
        raise NotImplementedError
