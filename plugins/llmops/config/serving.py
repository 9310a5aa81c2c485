"""The serving block: the model API, its vLLM servers, batch predictions and the monitoring thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmops.config._base import _Strict


class MonitoringConfig(_Strict):
    """Thresholds of the daily monitoring DAG; crossing one fails its check task (Airflow alerting fires)."""

    schedule: str | None = Field("@daily", description="Cron or preset of the monitoring DAG; null = manual only")
    max_p95_latency_ms: float | None = Field(5000, gt=0, description="Highest p95 request latency (null: no "
                                             "check)")
    max_block_rate: float | None = Field(0.05, ge=0, le=1, description="Highest share of answers the safety "
                                         "filter blocked")
    max_recitation_rate: float | None = Field(0.9, ge=0, le=1, description="Highest share of answers that "
                                              "recite the training snapshot verbatim")
    max_length_psi: float | None = Field(0.25, gt=0, description="Population stability index of prompt lengths "
                                         "(requests vs training snapshot)")
    min_vocabulary_overlap: float | None = Field(0.5, ge=0, le=1, description="Share of request words seen in the "
                                                 "training prompts")


class VllmConfig(_Strict):
    """vLLM servers behind the API (``serving.engine: vllm``): the API stays the gateway (keys, safety, citations,
    prediction log, metrics, backpressure, canary) and vLLM decodes. See docs/vllm.md."""

    mode: Literal["merged", "lora"] = Field("lora", description="lora: one base model, each version a LoRA adapter "
                                            "loaded at runtime (the GPU choice); merged: each version its own merged "
                                            "model folder and vLLM server (the CPU choice)")
    urls: list[str] = Field(default_factory=list, description="lora mode: the vLLM servers' internal base URLs "
                            "(http://host:port); every one serves the same base model. Empty: the API starts and "
                            "supervises its own servers")
    api_key: str | None = Field(None, repr=False, description="The key the vLLM servers were started with "
                                "(--api-key); default: $LLMOPS_VLLM_API_KEY")
    python: str = Field(".venv-vllm/bin/python", description="Python of the vLLM environment (`make vllm-tools`), "
                        "for the servers the API starts itself")
    host: str = Field("127.0.0.1", description="Where the servers the API starts listen (an internal address)")
    base_port: int = Field(8100, gt=0, lt=65536, description="First port of the servers the API starts; the "
                           "gateway's public port never forwards their adapter-loading endpoints")
    max_lora_rank: int = Field(16, gt=0, description="--max-lora-rank of the servers the API starts; an adapter "
                               "of a higher rank is refused and its registration fails")
    max_loras: int = Field(4, gt=0, description="--max-loras: adapters decoded together in one batch")
    max_model_len: int = Field(1024, gt=0, description="--max-model-len of the servers the API starts")
    dtype: str = Field("auto", description="--dtype of the servers the API starts (float32 on CPU reproduces "
                       "transformers' greedy output exactly)")
    extra_args: list[str] = Field(default_factory=list, description="More vLLM server arguments")
    startup_timeout_s: float = Field(300.0, gt=0, description="How long a started server may take to answer")
    check_merged: bool = Field(True, description="merged mode: before any alias moves, the registration starts "
                               "the version's vLLM server once on a free port (about a minute on CPU); a version "
                               "vLLM cannot serve fails the registration, naming vLLM's reason")
    cpu_binds: list[str] = Field(default_factory=list, description="CPU hosts: VLLM_CPU_OMP_THREADS_BIND of each "
                                 "server the API starts, the first one no running server holds (e.g. ['0', '1']: "
                                 "two merged versions' servers on a core each, so a starting one is not starved); "
                                 "empty: vLLM's own (all cores)")
    request_timeout_s: float = Field(5.0, gt=0, description="Connecting to a server; an unreachable one is a 503 "
                                     "with Retry-After")


class ServingConfig(_Strict):
    engine: Literal["embedded", "vllm"] = Field("embedded", description="embedded: decoding in this process "
                                                "(transformers); vllm: the API is a gateway in front of vLLM")
    vllm: VllmConfig = Field(VllmConfig(), description="The vLLM servers (serving.engine: vllm)")
    canary_fraction: float = Field(0.0, ge=0, le=1, description="Share of requests served by `challenger`")
    max_prompt_chars: int = Field(4000, gt=0, description="Longer prompts get 413 before the model runs")
    max_new_tokens: int = Field(64, gt=0, description="Most new tokens per answer (a request may ask for fewer); "
                                "batch predictions use it too")
    reload_interval_s: float = Field(10.0, gt=0, description="How often the API checks whether an alias moved")
    max_batch_size: int = Field(16, gt=0, le=256, description="Most requests decoded together by one model")
    max_wait_ms: float = Field(10.0, ge=0, le=1000, description="How long a batch waits for more requests")
    max_queue: int = Field(64, gt=0, description="Requests waiting per model version; more get 429")
    request_timeout_s: float = Field(60.0, gt=0, description="A request not answered by then gets 503")
    without_index: Literal["refuse", "answer"] = Field(
        "refuse", description="With a retrieval block, when the live index is missing or unreadable: refuse (503 "
        "naming the index) or answer without context, saying so in the response (llmops.retrieval)")
    batch_input: str | None = Field(None, description="Files (glob) the batch prediction DAG runs the champion on")
    batch_prompt_column: str = Field("prompt", description="Column of the batch_input files that holds prompts")
    batch_size: int = Field(32, gt=0, description="Rows decoded together in batch predictions")
    monitoring: MonitoringConfig = Field(MonitoringConfig(), description="Thresholds of the monitoring DAG")
