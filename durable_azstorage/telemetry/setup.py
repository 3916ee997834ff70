"""Turn telemetry on from the standard ``OTEL_*`` environment variables or the CLI's ``--otel``.

Export is the OpenTelemetry SDK's (``pip install 'durable-azstorage[otel]'``): OTLP over HTTP with
the exporter's own ``OTEL_EXPORTER_OTLP_*`` settings, or the console exporter when
``OTEL_TRACES_EXPORTER=console``. Nothing here is a hand-written exporter.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

from . import metrics, tracing

__all__ = ["configure", "wanted"]

log = logging.getLogger(__name__)

_TRIGGERS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
)


def wanted(flag: bool = False) -> bool:
    """``--otel``, or an OTLP endpoint / traces exporter named in the environment (and not ``none``)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if flag:
        return True
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter == "none":
        return False
    return any(os.environ.get(name) for name in _TRIGGERS)


def configure(flag: bool = False, *, tracer_provider: Any | None = None, meter_provider: Any | None = None) -> bool:
    """Enable tracing (and metrics) if wanted; returns whether it is on. Providers given here are used as is."""
    if tracer_provider is not None or meter_provider is not None:
        if tracer_provider is not None:
            tracing.enable(tracer_provider)
        if meter_provider is not None:
            metrics.enable(meter_provider)
        return True
    if not wanted(flag):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
            SpanExporter,
        )
    except ImportError as exc:
        raise RuntimeError(
            "OpenTelemetry is not installed: pip install 'durable-azstorage[otel]' (or unset OTEL_*)"
        ) from exc
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "durable-azstorage"})
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "console":
        # Debugging output: written as each span ends (a span that ended survives a kill -9).
        exporter = ConsoleSpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # flush the batch on a normal exit
    tracing.enable(provider)
    _configure_metrics(resource)
    _correlate_logs()
    log.info("telemetry.enabled", extra={"exporter": type(exporter).__name__})
    return True


def _configure_metrics(resource: Any) -> None:
    """Metrics through the SDK's periodic reader: OTLP/HTTP, or console with ``OTEL_METRICS_EXPORTER``.

    ``OTEL_METRICS_EXPORTER=none`` keeps traces without metrics; unset, metrics go over OTLP only
    when an OTLP endpoint is named (so ``OTEL_TRACES_EXPORTER=console`` alone does not send metrics
    to a collector that is not there). The export interval is the SDK's (``OTEL_METRIC_EXPORT_INTERVAL``,
    60 s by default).
    """
    choice = os.environ.get("OTEL_METRICS_EXPORTER", "").lower()
    if not choice:  # unset: OTLP when an endpoint is named, else none (console traces alone stay quiet)
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        choice = "otlp" if any(os.environ.get(name) for name in endpoints) else "none"
    if choice == "none":
        return
    from opentelemetry import metrics as otel_api
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader

    exporter: MetricExporter
    if choice == "console":
        exporter = ConsoleMetricExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter()
    provider = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter)])
    otel_api.set_meter_provider(provider)
    atexit.register(provider.shutdown)
    metrics.enable(provider)


class _TraceIds(logging.Filter):
    """Adds ``otelTraceID``/``otelSpanID`` (the OpenTelemetry logging convention) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        record.otelTraceID = f"{ctx.trace_id:032x}" if ctx.is_valid else "0"
        record.otelSpanID = f"{ctx.span_id:016x}" if ctx.is_valid else "0"
        return True


def _correlate_logs() -> None:
    """Correlate the project's stable log events with the trace they happen in."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, _TraceIds) for f in handler.filters):
            handler.addFilter(_TraceIds())
