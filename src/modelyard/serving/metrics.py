"""Prometheus metrics of a serving process, in a registry of its own.

Per endpoint, version (``model/3``) and role (``primary`` or ``shadow``):
requests, errors, latency, batch sizes and queue depth; shadow copies dropped
because a shadow fell behind. Per endpoint: requests refused, and predictions not
given because the prediction log could not be written (a full or read-only disk).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LABELS = ("endpoint", "version", "role")


class ServingMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelyard_predictions_requests",
            "Prediction requests answered (primary) or mirrored (shadow)",
            LABELS,
            registry=self.registry,
        )
        self.errors = Counter(
            "modelyard_predictions_errors",
            "Prediction requests whose model raised",
            LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelyard_prediction_latency_seconds",
            "Time from a request reaching its version to its answer, queueing included",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "modelyard_batch_rows",
            "Rows per model call after micro-batching",
            LABELS,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "modelyard_queue_depth",
            "Requests waiting for their version's next batch",
            LABELS,
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "modelyard_shadow_dropped",
            "Request copies a shadow skipped (its queue was full, or the shadow process died)",
            ("endpoint", "version"),
            registry=self.registry,
        )
        self.rejected = Counter(
            "modelyard_requests_rejected",
            "Requests refused before reaching a model, by HTTP status",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.log_failures = Counter(
            "modelyard_prediction_log_failures",
            "Predictions computed but answered 503 because the prediction log could not be "
            "written (a full or read-only disk)",
            ("endpoint",),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}

    def observe(self, endpoint: str, version: str, role: str, seconds: float, failed: bool) -> None:
        key = (endpoint, version, role)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(*key),
                self.errors.labels(*key),
                self.latency.labels(*key),
            )
            self._children[key] = children
        requests, errors, latency = children
        requests.inc()
        latency.observe(seconds)
        if failed:
            errors.inc()

    def observe_batch(
        self,
        endpoint: str,
        version: str,
        role: str,
        *,
        requests: int,
        errors: int,
        rows: int,
        seconds: float,
    ) -> None:
        """One batch computed elsewhere (the shadow process): every request took ``seconds``."""
        key = (endpoint, version, role)
        self.requests.labels(*key).inc(requests)
        if errors:
            self.errors.labels(*key).inc(errors)
        latency = self.latency.labels(*key)
        for _ in range(requests):
            latency.observe(seconds)
        self.batch_size.labels(*key).observe(rows)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
