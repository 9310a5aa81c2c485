"""One ``<use_case>__export`` DAG per include/use_cases/*.yaml: export a registered version by hand.

The Params form takes the version (empty = the `champion`), what to export (`merged`: the adapter merged into the
base as safetensors; `gguf`: that model converted by llama.cpp's converter, one file per out type, each with an
Ollama Modelfile) and the GGUF out types. The exports are artifacts of the version's own MLflow run, tagged on the
version with their content hash and size. A re-run skips what is registered already (unless `force`). Same as
``python -m llmops.cli export --use-case <name> [--version N]``. A use case's ``export:`` list runs the same
step after each registration in its finetune DAG.
"""

from __future__ import annotations

from airflow.sdk import Param

from llmops import names
from llmops.operators.dag_factory import use_case_dag, use_cases
from llmops.operators.export import ExportOperator

for cfg in use_cases():
    with use_case_dag(
        cfg, "export", tag="export", description=f"Export a registered version of {cfg.model_name} (merged, GGUF)",
        render_template_as_native_obj=True, doc_md=__doc__,
        params={
            "version": Param("", type="string", title="Version",
                             pattern=names.param_pattern(names.VERSION_RE, optional=True),
                             description="Model version to export. Empty: the `champion`."),
            "kinds": Param(cfg.export or ["merged", "gguf"], type="array", title="Exports",
                           items={"type": "string", "enum": ["merged", "gguf"]}),
            "gguf_types": Param(["f16", "q8_0"], type="array", title="GGUF out types",
                                items={"type": "string", "enum": ["f32", "f16", "bf16", "q8_0"]}),
            "force": Param(False, type="boolean", title="Force", description="Rebuild exports registered already."),
        },
    ):
        ExportOperator(task_id="export", use_case=cfg.name, version="{{ params.version }}",
                       kinds="{{ params.kinds }}", gguf_types="{{ params.gguf_types }}", force="{{ params.force }}")
