"""Prometheus metrics of the serving API, per model version, in the service's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ServingMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("llmops_requests_total", "Requests by model version and HTTP status",
                                ["version", "status"], registry=self.registry)
        self.latency = Histogram("llmops_request_latency_seconds", "Generation latency by model version",
                                 ["version"], registry=self.registry,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.tokens = Counter("llmops_generated_tokens_total", "Generated tokens by model version", ["version"],
                              registry=self.registry)
        self.refused = Counter("llmops_model_versions_refused_total", "Registered versions not loaded because their "
                               "adapter files are not the registered ones (alert on any)", ["alias", "version"],
                               registry=self.registry)
        self.blocked = Counter("llmops_blocked_total", "Responses withheld by the safety filter", ["version"],
                               registry=self.registry)
