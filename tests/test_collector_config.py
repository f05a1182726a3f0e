"""Structural checks of the bundled pipeline (README: Send it to Jaeger / Tempo / Grafana).

There is no Docker engine on these machines, so nothing here starts a container. The tests parse every
file of the pipeline (collector configs, docker-compose.yml, Tempo, Loki, Prometheus, Grafana provisioning,
dashboards, alert rules) and check the cross-references that a typo would silently break: a component named in
a pipeline but never defined, an exporter pointing at a port no service listens on, a dashboard querying a
metric name that modeltel never emits. The running pipeline is exercised end to end through rotel and Phoenix
in tests/integration.

Prometheus names are derived, not hard-coded: `prometheus_series` applies the collector prometheus exporter's
translation (UnderscoreEscapingWithSuffixes, pinned in the config) to the OTel names in
`modeltel._internal.semconv`.
`check_queries_against_metrics` is the hook to check the dashboards against the metrics a real run wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from modeltel._internal import semconv

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "collector-config"
COMPOSE_FILE = REPO / "docker-compose.yml"
GRAFANA_DIR = CONFIG_DIR / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"
PROVISIONING_DIR = GRAFANA_DIR / "provisioning"
COLLECTOR_CONFIGS = sorted(CONFIG_DIR.glob("otelcol*.yaml"))

PINNED_COLLECTOR_VERSION = "0.156.0"
"""The otelcol-contrib release the configs were written against; compose pins the same image tag."""

# Component types the configs use, as named in the pinned release. A type outside these sets is a typo or a
# component this release does not ship under that name. `otlp` / `otlphttp` exporters are deprecated aliases
# since v0.144 (renamed `otlp_grpc` / `otlp_http`).
KNOWN_COMPONENT_TYPES: dict[str, set[str]] = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "attributes", "resource", "tail_sampling", "deltatocumulative"},
    "exporters": {"otlp_grpc", "otlp_http", "prometheus", "debug"},
    "connectors": {"spanmetrics", "forward", "sum"},
    "extensions": {"health_check", "file_storage"},
}
DEPRECATED_EXPORTER_TYPES = {"otlp", "otlphttp"}

# (exporter-side pipeline type, receiver-side pipeline type) each connector type supports.
CONNECTOR_SIGNALS: dict[str, set[tuple[str, str]]] = {
    "spanmetrics": {("traces", "metrics")},
    "sum": {("traces", "metrics"), ("metrics", "metrics"), ("logs", "metrics")},
    "forward": {("traces", "traces"), ("metrics", "metrics"), ("logs", "logs")},
}

SECRET_ATTRIBUTE_EXAMPLES = [
    "authorization",
    "http.request.header.authorization",
    "Authorization",
    "db.password",
    "user_password",
    "passwd",
    "client_secret",
    "aws.secret_access_key",
    "api_key",
    "openai.api-key",
    "x-api-key",
    "OPENAI_API_KEY",
    "access_token",
    "http.request.header.x-auth-token",
    "token",
    "cookie",
    "http.request.header.cookie",
]


# ---------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_compose() -> dict[str, Any]:
    compose: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return compose


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load_compose()["services"]
    return services


def component_type(component_id: str) -> str:
    """`otlp_grpc/jaeger` -> `otlp_grpc`: the collector's `type[/name]` component ids."""
    return component_id.split("/", 1)[0]


def interpolate_defaults(text: str) -> str:
    """Resolve compose `${VAR:-default}` / `${VAR-default}` to the default, as with the variable unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    named_volume: bool


def service_mounts(service: dict[str, Any]) -> list[Mount]:
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            source, target = str(entry.get("source", "")), str(entry["target"])
            named = entry.get("type", "volume") == "volume"
        else:
            parts = interpolate_defaults(str(entry)).split(":")
            source, target = parts[0], parts[1]
            named = not source.startswith((".", "/", "~"))
        mounts.append(Mount(interpolate_defaults(source), target, named))
    return mounts


def service_listen_ports(service: dict[str, Any]) -> set[int]:
    """Container ports a service listens on: its `expose` list and the container side of `ports`."""
    ports = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def service_published_ports(service: dict[str, Any]) -> dict[int, int]:
    """Host port -> container port for every published port."""
    published = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published[int(entry["published"])] = int(entry["target"])
        else:
            parts = str(entry).split("/")[0].split(":")
            published[int(parts[-2])] = int(parts[-1])
    return published


def split_host_port(address: str) -> tuple[str, int]:
    """`jaeger:4317`, `http://tempo:3200/x` or `0.0.0.0:4317` -> (host, port)."""
    match = re.fullmatch(r"(?:[a-z]+://)?([^:/]+):(\d+)(?:/.*)?", address)
    assert match, f"not a host:port address: {address!r}"
    return match.group(1), int(match.group(2))


def command_arg(service: dict[str, Any], flag: str) -> str:
    """Value of `--flag=value` / `-flag=value` in a compose service's command."""
    command = service.get("command", [])
    args = command.split() if isinstance(command, str) else [str(a) for a in command]
    for arg in args:
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not found in command {args}")


def iter_pipelines(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, list[str]]]]:
    yield from config["service"]["pipelines"].items()


def pipeline_signal(pipeline_id: str) -> str:
    return component_type(pipeline_id)


def go_duration_seconds(text: str) -> float:
    """Parse a Go duration (`500us`, `2500ms`, `1m`, `1h`) as the collector does."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a Go duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


# ---------------------------------------------------------------------------------------------------------
# OTel -> Prometheus names, as the collector's prometheus exporter writes them
# ---------------------------------------------------------------------------------------------------------

MetricKind = Literal["histogram", "counter", "updowncounter", "gauge"]


@dataclass(frozen=True)
class OtelMetric:
    """An OTel metric as the exporter sees it: the Prometheus name depends on name, unit and kind."""

    name: str
    unit: str
    kind: MetricKind


# UCUM units the translator (prometheus/otlptranslator, used by the pinned exporter) maps to words.
_UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tebibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
}  # fmt: skip
_PER_UNIT_WORDS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


def _clean_unit(unit: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9:]", "_", unit)).strip("_")


def _unit_tokens(unit: str) -> list[str]:
    """`s` -> [seconds]; `By/s` -> [bytes, per_second]; `{request}` and `1` -> []."""
    main, _, per = unit.partition("/")
    tokens = []
    main = main.strip()
    if main and not re.search(r"[{}]", main):
        tokens.append(_clean_unit(_UNIT_WORDS.get(main, main)))
    per = per.strip()
    if per and not re.search(r"[{}]", per):
        tokens.append("per_" + _clean_unit(_PER_UNIT_WORDS.get(per, per)))
    return [t for t in tokens if t]


def prometheus_name(metric: OtelMetric) -> str:
    """The metric family name under UnderscoreEscapingWithSuffixes.

    Dots and other invalid characters become `_`; the unit is appended in words unless already a name token
    (`s` -> `_seconds`, `{request}` annotations and `1` add nothing); monotonic counters end in `_total`;
    gauges (only gauges) with unit `1` end in `_ratio`.
    """
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]+", metric.name) if t]
    for unit_token in _unit_tokens(metric.unit):
        if unit_token not in tokens:
            tokens.append(unit_token)
    if metric.kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if metric.unit == "1" and metric.kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    name = "_".join(tokens)
    return "_" + name if name[:1].isdigit() else name


def prometheus_series(metric: OtelMetric) -> frozenset[str]:
    """Series names a query can select: histograms expose `_bucket`, `_sum` and `_count`."""
    base = prometheus_name(metric)
    if metric.kind == "histogram":
        return frozenset({f"{base}_bucket", f"{base}_sum", f"{base}_count"})
    return frozenset({base})


def prometheus_label(attribute: str) -> str:
    """Attribute key -> label name: invalid characters become `_`, a leading digit gets `key_`."""
    label = re.sub(r"[^a-zA-Z0-9_]", "_", attribute)
    return "key_" + label if label[:1].isdigit() else label


# ---------------------------------------------------------------------------------------------------------
# What modeltel emits
# ---------------------------------------------------------------------------------------------------------

# Kinds and units as the README lists them, names from semconv (names and units, but not which unit goes
# with which instrument; when the demo's metrics file exists, check_queries_against_metrics run on that file
# is the authority: it carries the real unit and kind of every instrument).
MODELTEL_METRICS: tuple[OtelMetric, ...] = (
    OtelMetric(semconv.METRIC_SIMULATION_RUN_DURATION, semconv.UNIT_SECONDS, "histogram"),
    OtelMetric(semconv.METRIC_SIMULATION_CACHE_REQUESTS, semconv.UNIT_REQUESTS, "counter"),
    OtelMetric(semconv.METRIC_CALIBRATION_ITERATION_DURATION, semconv.UNIT_SECONDS, "histogram"),
    OtelMetric(semconv.METRIC_CALIBRATION_LOSS, semconv.UNIT_ONE, "histogram"),
    OtelMetric(semconv.METRIC_CALIBRATION_BEST_LOSS, semconv.UNIT_ONE, "gauge"),
    OtelMetric(semconv.METRIC_INFERENCE_DURATION, semconv.UNIT_SECONDS, "histogram"),
    OtelMetric(semconv.METRIC_INFERENCE_CONFIDENCE, semconv.UNIT_ONE, "histogram"),
    OtelMetric(semconv.METRIC_INFERENCE_REJECTS, semconv.UNIT_PREDICTIONS, "counter"),
    OtelMetric(semconv.METRIC_INFERENCE_ENTROPY, semconv.UNIT_ONE, "histogram"),
    OtelMetric(semconv.METRIC_EXPORT_DROPPED, semconv.UNIT_SPANS, "counter"),
    OtelMetric(semconv.GEN_AI_CLIENT_OPERATION_DURATION, semconv.UNIT_SECONDS, "histogram"),
    OtelMetric(semconv.GEN_AI_CLIENT_TOKEN_USAGE, semconv.UNIT_TOKENS, "histogram"),
)

_NON_ATTRIBUTE_CONSTANTS = (
    "METRIC_",
    "SPAN_",
    "UNIT_",
    "GEN_AI_CLIENT_",
    "INSTRUMENTATION_SCOPE",
    "JOB_SPAN",
)


def semconv_attributes() -> set[str]:
    """Every attribute key semconv defines (its own and the re-exported GenAI / error ones)."""
    return {
        value
        for key, value in vars(semconv).items()
        if key.isupper() and isinstance(value, str) and not key.startswith(_NON_ATTRIBUTE_CONSTANTS)
    }


def semconv_span_names() -> set[str]:
    return {v for k, v in vars(semconv).items() if k.startswith("SPAN_") and isinstance(v, str)}


def collector_derived_metrics(config: dict[str, Any]) -> set[OtelMetric]:
    """Metrics the collector itself creates from spans: spanmetrics RED metrics and sum-connector sums."""
    derived: set[OtelMetric] = set()
    for connector_id, settings in (config.get("connectors") or {}).items():
        settings = settings or {}
        if component_type(connector_id) == "spanmetrics":
            namespace = settings.get("namespace", "traces.span.metrics")
            unit = (settings.get("histogram") or {}).get("unit", "ms")
            prefix = f"{namespace}." if namespace else ""
            derived.add(OtelMetric(f"{prefix}calls", "", "counter"))
            derived.add(OtelMetric(f"{prefix}duration", unit, "histogram"))
        elif component_type(connector_id) == "sum":
            for signal in ("spans", "spanevents", "datapoints", "logs"):
                for metric_name in settings.get(signal) or {}:
                    derived.add(OtelMetric(metric_name, "", "counter"))
    return derived


def allowed_labels(config: dict[str, Any]) -> set[str]:
    """Label names a query may use: semconv attributes and the labels spanmetrics and the exporter add."""
    labels = {prometheus_label(a) for a in semconv_attributes()}
    labels |= {"job", "instance", "le", "otel_scope_name", "otel_scope_version"}
    labels |= {"service_name", "span_name", "span_kind", "status_code"}  # spanmetrics' default dimensions
    for connector_id, settings in (config.get("connectors") or {}).items():
        if component_type(connector_id) == "spanmetrics":
            labels |= {prometheus_label(d["name"]) for d in (settings or {}).get("dimensions", [])}
    return labels


# ---------------------------------------------------------------------------------------------------------
# PromQL / TraceQL scanning
# ---------------------------------------------------------------------------------------------------------

_PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan",
}  # fmt: skip
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def _unescape(promql_string: str) -> str:
    return re.sub(r"\\(.)", r"\1", promql_string)


@dataclass
class QueryNames:
    metrics: set[str]
    labels: set[str]
    matchers: list[tuple[str, str, str]]  # (label, operator, unescaped value)


def promql_names(expr: str) -> QueryNames:
    """Metric names, label names and label matchers a PromQL expression uses."""
    matchers = []
    for body in re.findall(r"\{([^{}]*)\}", expr):
        matchers += [(label, op, _unescape(value)) for label, op, value in _MATCHER.findall(body)]
    labels = {label for label, _, _ in matchers}
    stripped = re.sub(r"\{[^{}]*\}", " ", expr)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    for group in _GROUPING.findall(stripped):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    stripped = _GROUPING.sub(" ", stripped)
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', " ", stripped)
    metrics = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)", stripped):
        name = match.group(1)
        is_call = stripped[match.end() :].lstrip().startswith("(")
        if not is_call and name not in _PROMQL_KEYWORDS:
            metrics.add(name)
    return QueryNames(metrics, labels, matchers)


def label_values_names(query: str) -> QueryNames:
    """Names in a Grafana `label_values(metric{...}, label)` or `label_values(label)` variable query."""
    match = re.fullmatch(r"\s*label_values\((.*)\)\s*", query)
    assert match, f"unsupported variable query: {query!r}"
    selector, _, label = match.group(1).rpartition(",")
    names = promql_names(selector) if selector.strip() else QueryNames(set(), set(), [])
    names.labels.add(label.strip())
    return names


# ---------------------------------------------------------------------------------------------------------
# Grafana content
# ---------------------------------------------------------------------------------------------------------


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def load_datasources() -> list[dict[str, Any]]:
    datasources: list[dict[str, Any]] = []
    for path in sorted((PROVISIONING_DIR / "datasources").glob("*.y*ml")):
        datasources += load_yaml(path).get("datasources", [])
    return datasources


def datasource_uid(type_: str) -> str:
    [uid] = [d["uid"] for d in load_datasources() if d["type"] == type_]
    return str(uid)


def load_alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted((PROVISIONING_DIR / "alerting").glob("*.y*ml")):
        for group in load_yaml(path).get("groups", []):
            rules += group.get("rules", [])
    return rules


def prometheus_queries() -> list[tuple[str, str, QueryNames]]:
    """(where, query text, names) for every Prometheus query in dashboards, variables and alert rules."""
    prom_uid = datasource_uid("prometheus")
    queries = []
    for file_name, dashboard in load_dashboards().items():
        for panel in iter_panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel.get("datasource") or {}
                if datasource.get("uid") == prom_uid:
                    where = f"{file_name} panel {panel['title']!r} {target['refId']}"
                    queries.append((where, target["expr"], promql_names(target["expr"])))
        for variable in dashboard.get("templating", {}).get("list", []):
            if (variable.get("datasource") or {}).get("uid") == prom_uid:
                query = (
                    variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
                )
                queries.append(
                    (f"{file_name} variable ${variable['name']}", query, label_values_names(query))
                )
    for rule in load_alert_rules():
        for node in rule["data"]:
            if node["datasourceUid"] == prom_uid:
                expr = node["model"]["expr"]
                queries.append((f"alert {rule['uid']} {node['refId']}", expr, promql_names(expr)))
    return queries


def traceql_queries() -> list[tuple[str, str]]:
    tempo_uid = datasource_uid("tempo")
    queries = []
    for file_name, dashboard in load_dashboards().items():
        for panel in iter_panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                if (target.get("datasource") or panel.get("datasource") or {}).get("uid") == tempo_uid:
                    queries.append((f"{file_name} panel {panel['title']!r}", target["query"]))
    return queries


# ---------------------------------------------------------------------------------------------------------
# HOOK: check the dashboards and alert rules against the metrics a real run wrote.
# ---------------------------------------------------------------------------------------------------------


def otel_metrics_from_otlp_json(lines: Iterable[str]) -> set[OtelMetric]:
    """Metric descriptors from OTLP/JSON ExportMetricsServiceRequest lines (modeltel's metrics JSONL)."""
    kinds = {"histogram": "histogram", "exponentialHistogram": "histogram", "gauge": "gauge"}
    found: set[OtelMetric] = set()
    for line in lines:
        if not line.strip():
            continue
        request = json.loads(line)
        for resource_metrics in request.get("resourceMetrics", []):
            for scope_metrics in resource_metrics.get("scopeMetrics", []):
                for metric in scope_metrics.get("metrics", []):
                    kind: MetricKind
                    if "sum" in metric:
                        kind = "counter" if metric["sum"].get("isMonotonic") else "updowncounter"
                    else:
                        [data_key] = [k for k in kinds if k in metric]
                        kind = kinds[data_key]  # type: ignore[assignment]
                    found.add(OtelMetric(metric["name"], metric.get("unit", ""), kind))
    return found


def check_queries_against_metrics(
    metrics: Iterable[OtelMetric], config_path: Path | None = None
) -> list[str]:
    """Problems with the dashboards' and alert rules' PromQL, given the metrics a run emitted.

    Every metric name a query selects must be the Prometheus form of one of `metrics` or of a metric the
    collector derives from spans (spanmetrics, sum connector) in `config_path` (default: otelcol.yaml); every
    label must be a known attribute or exporter label. Returns one message per problem, empty when all is
    well. The lead's demo check calls this with `otel_metrics_from_otlp_json` of the file `modeltel demo`
    writes under metrics/.
    """
    config = load_yaml(config_path or CONFIG_DIR / "otelcol.yaml")
    known = set().union(*(prometheus_series(m) for m in [*metrics, *collector_derived_metrics(config)]))
    labels = allowed_labels(config)
    problems = []
    for where, query, names in prometheus_queries():
        problems += [f"{where}: unknown metric {m!r} in {query!r}" for m in sorted(names.metrics - known)]
        problems += [f"{where}: unknown label {lb!r} in {query!r}" for lb in sorted(names.labels - labels)]
    return problems


# =========================================================================================================
# Tests: OTel -> Prometheus translation (the examples of the translator's documentation)
# =========================================================================================================


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (OtelMetric("system.filesystem.usage", "By", "gauge"), {"system_filesystem_usage_bytes"}),
        (OtelMetric("system.network.dropped", "{packets}", "counter"), {"system_network_dropped_total"}),
        (OtelMetric("system.memory.utilization", "1", "gauge"), {"system_memory_utilization_ratio"}),
        (OtelMetric("requests.count", "1", "counter"), {"requests_count_total"}),
        (OtelMetric("network.io", "By/s", "gauge"), {"network_io_bytes_per_second"}),
        (OtelMetric("request.duration.seconds", "s", "gauge"), {"request_duration_seconds"}),
        (
            OtelMetric("http.server.duration", "s", "histogram"),
            {"http_server_duration_seconds_bucket", "http_server_duration_seconds_sum",
             "http_server_duration_seconds_count"},
        ),
        (OtelMetric("traces.span.metrics.calls", "", "counter"), {"traces_span_metrics_calls_total"}),
        (
            OtelMetric("traces.span.metrics.duration", "s", "histogram"),
            {"traces_span_metrics_duration_seconds_bucket", "traces_span_metrics_duration_seconds_sum",
             "traces_span_metrics_duration_seconds_count"},
        ),
    ],
)  # fmt: skip
def test_prometheus_translation(metric: OtelMetric, expected: set[str]) -> None:
    assert prometheus_series(metric) == expected


def test_modeltel_metric_names_in_prometheus() -> None:
    names = {m.name: prometheus_name(m) for m in MODELTEL_METRICS}
    assert names[semconv.METRIC_SIMULATION_RUN_DURATION] == "modeltel_simulation_run_duration_seconds"
    assert names[semconv.METRIC_SIMULATION_CACHE_REQUESTS] == "modeltel_simulation_cache_requests_total"
    assert names[semconv.METRIC_CALIBRATION_BEST_LOSS] == "modeltel_calibration_best_loss_ratio"
    assert names[semconv.METRIC_INFERENCE_REJECTS] == "modeltel_inference_rejects_total"
    assert names[semconv.GEN_AI_CLIENT_TOKEN_USAGE] == "gen_ai_client_token_usage"
    assert names[semconv.GEN_AI_CLIENT_OPERATION_DURATION] == "gen_ai_client_operation_duration_seconds"


def test_prometheus_exporter_pins_the_translation_the_helper_implements() -> None:
    for path in COLLECTOR_CONFIGS:
        exporters = load_yaml(path)["exporters"]
        [prometheus] = [v for k, v in exporters.items() if component_type(k) == "prometheus"]
        assert prometheus.get("translation_strategy") == "UnderscoreEscapingWithSuffixes", path.name


# =========================================================================================================
# Tests: collector configs
# =========================================================================================================


@pytest.fixture(params=COLLECTOR_CONFIGS, ids=lambda p: p.name)
def collector_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(request.param)
    return config


def test_both_collector_configs_exist() -> None:
    assert [p.name for p in COLLECTOR_CONFIGS] == ["otelcol-tail-sampling.yaml", "otelcol.yaml"]


def test_components_are_of_the_pinned_release(collector_config: dict[str, Any]) -> None:
    for section, known in KNOWN_COMPONENT_TYPES.items():
        for component_id in collector_config.get(section) or {}:
            assert component_type(component_id) in known, f"{section}: unknown component type {component_id}"
    for exporter_id in collector_config["exporters"]:
        assert component_type(exporter_id) not in DEPRECATED_EXPORTER_TYPES, (
            f"{exporter_id}: deprecated alias, use otlp_grpc / otlp_http"
        )


def test_every_pipeline_component_is_defined(collector_config: dict[str, Any]) -> None:
    receivers = set(collector_config["receivers"]) | set(collector_config.get("connectors") or {})
    processors = set(collector_config.get("processors") or {})
    exporters = set(collector_config["exporters"]) | set(collector_config.get("connectors") or {})
    for pipeline_id, pipeline in iter_pipelines(collector_config):
        assert pipeline_signal(pipeline_id) in {"traces", "metrics", "logs"}, pipeline_id
        assert pipeline.get("receivers") and pipeline.get("exporters"), pipeline_id
        for name in pipeline["receivers"]:
            assert name in receivers, f"{pipeline_id}: receiver {name} is not defined"
        for name in pipeline.get("processors", []):
            assert name in processors, f"{pipeline_id}: processor {name} is not defined"
        for name in pipeline["exporters"]:
            assert name in exporters, f"{pipeline_id}: exporter {name} is not defined"


def test_every_defined_component_is_used(collector_config: dict[str, Any]) -> None:
    used = set()
    for _, pipeline in iter_pipelines(collector_config):
        for role in ("receivers", "processors", "exporters"):
            used |= set(pipeline.get(role, []))
    for section in ("receivers", "processors", "exporters", "connectors"):
        unused = set(collector_config.get(section) or {}) - used
        assert not unused, f"{section} defined but in no pipeline (typo?): {sorted(unused)}"


def test_extensions_are_enabled_and_referenced_storage_exists(collector_config: dict[str, Any]) -> None:
    defined = set(collector_config.get("extensions") or {})
    enabled = collector_config["service"].get("extensions", [])
    assert set(enabled) == defined, "every extension defined must be listed under service.extensions and back"
    assert any(component_type(e) == "health_check" for e in enabled)
    for exporter_id, settings in collector_config["exporters"].items():
        storage = ((settings or {}).get("sending_queue") or {}).get("storage")
        if storage is not None:
            assert storage in enabled, (
                f"{exporter_id}: sending_queue.storage {storage} is not an enabled extension"
            )
            assert component_type(storage) == "file_storage"


def test_connectors_join_pipelines_of_matching_signals(collector_config: dict[str, Any]) -> None:
    for connector_id in collector_config.get("connectors") or {}:
        as_exporter = [p for p, pl in iter_pipelines(collector_config) if connector_id in pl["exporters"]]
        as_receiver = [p for p, pl in iter_pipelines(collector_config) if connector_id in pl["receivers"]]
        assert as_exporter, f"connector {connector_id} is exporter in no pipeline"
        assert as_receiver, f"connector {connector_id} is receiver in no pipeline"
        supported = CONNECTOR_SIGNALS[component_type(connector_id)]
        for source in as_exporter:
            for sink in as_receiver:
                pair = (pipeline_signal(source), pipeline_signal(sink))
                assert pair in supported, f"{connector_id}: {source} -> {sink} is not a supported signal pair"


def test_processor_order(collector_config: dict[str, Any]) -> None:
    for pipeline_id, pipeline in iter_pipelines(collector_config):
        processors = pipeline.get("processors", [])
        if "otlp" in pipeline["receivers"]:
            assert processors[:1] == ["memory_limiter"], f"{pipeline_id}: memory_limiter must come first"
            assert {"resource/scrub", "attributes/scrub"} <= set(processors), (
                f"{pipeline_id}: secrets not scrubbed"
            )
        if "batch" in processors:
            assert processors[-1] == "batch", f"{pipeline_id}: batch must come last"
        if any(component_type(e) in {"otlp_grpc", "otlp_http", "prometheus"} for e in pipeline["exporters"]):
            assert "batch" in processors, f"{pipeline_id}: network exporters need batching"


def test_otlp_receiver_matches_sdk_defaults(
    collector_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import DEFAULT_ENDPOINT as HTTP_DEFAULT

    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    grpc_exporter = GrpcSpanExporter()
    try:
        grpc_default = split_host_port(grpc_exporter._endpoint)[1]
    finally:
        grpc_exporter.shutdown()
    http_default = split_host_port(HTTP_DEFAULT)[1]
    assert (grpc_default, http_default) == (4317, 4318)

    protocols = collector_config["receivers"]["otlp"]["protocols"]
    assert split_host_port(protocols["grpc"]["endpoint"]) == ("0.0.0.0", grpc_default)
    assert split_host_port(protocols["http"]["endpoint"]) == ("0.0.0.0", http_default)
    published = service_published_ports(compose_services()["collector"])
    assert published.get(grpc_default) == grpc_default and published.get(http_default) == http_default


def test_traces_reach_jaeger_and_tempo_and_metrics_reach_prometheus(collector_config: dict[str, Any]) -> None:
    exporters_by_signal: dict[str, set[str]] = {}
    for pipeline_id, pipeline in iter_pipelines(collector_config):
        exporters_by_signal.setdefault(pipeline_signal(pipeline_id), set()).update(pipeline["exporters"])
    assert {"otlp_grpc/jaeger", "otlp_grpc/tempo"} <= exporters_by_signal["traces"]
    assert "prometheus" in exporters_by_signal["metrics"]
    for pipeline_id, pipeline in iter_pipelines(collector_config):
        if "spanmetrics" in pipeline["receivers"]:
            assert pipeline_signal(pipeline_id) == "metrics" and "prometheus" in pipeline["exporters"]


def test_persistent_queue_on_every_otlp_exporter(collector_config: dict[str, Any]) -> None:
    otlp_exporters = {
        k: v
        for k, v in collector_config["exporters"].items()
        if component_type(k) in {"otlp_grpc", "otlp_http"}
    }
    assert otlp_exporters
    for exporter_id, settings in otlp_exporters.items():
        queue = settings["sending_queue"]
        assert queue.get("enabled", True) and queue.get("storage"), f"{exporter_id}: no persistent queue"
        assert settings["retry_on_failure"]["enabled"], exporter_id


def test_spanmetrics_fit_modeltel(collector_config: dict[str, Any]) -> None:
    spanmetrics = collector_config["connectors"]["spanmetrics"]
    assert spanmetrics["histogram"]["unit"] == "s"
    buckets = [go_duration_seconds(b) for b in spanmetrics["histogram"]["explicit"]["buckets"]]
    assert buckets == pytest.approx(list(semconv.DURATION_BUCKETS_S)), "buckets must match DURATION_BUCKETS_S"
    dimensions = [d["name"] for d in spanmetrics["dimensions"]]
    assert set(dimensions) <= semconv_attributes(), "spanmetrics dimensions must be semconv attributes"
    assert not {semconv.SIMULATION_PARAM_ID, semconv.SIMULATION_SEED} & set(dimensions), "high cardinality"
    assert "span.name" not in spanmetrics.get("exclude_dimensions", [])


def test_cost_is_summed_from_the_semconv_attribute(collector_config: dict[str, Any]) -> None:
    spans = collector_config["connectors"]["sum"]["spans"]
    for metric in spans.values():
        assert metric["source_attribute"] == semconv.INFERENCE_COST_USD
        assert {a["key"] for a in metric.get("attributes", [])} <= semconv_attributes()
        # The connector adds a value once per grouping attribute: more than one would multiply the sum.
        assert len(metric.get("attributes", [])) <= 1


def _scrub_patterns(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    resource = [a["pattern"] for a in config["processors"]["resource/scrub"]["attributes"]]
    record = [a["pattern"] for a in config["processors"]["attributes/scrub"]["actions"]]
    return resource, record


def test_scrub_deletes_secrets_and_keeps_modeltel_attributes(collector_config: dict[str, Any]) -> None:
    resource, record = _scrub_patterns(collector_config)
    assert resource == record, "resource and record attributes must be scrubbed alike"
    for action in collector_config["processors"]["attributes/scrub"]["actions"]:
        assert action["action"] == "delete"
    compiled = [re.compile(p) for p in record]  # RE2 syntax used here is a subset of Python's

    def scrubbed(key: str) -> bool:
        return any(p.search(key) for p in compiled)

    missed = [k for k in SECRET_ATTRIBUTE_EXAMPLES if not scrubbed(k)]
    assert not missed, f"secret-looking attributes forwarded: {missed}"
    lost = sorted(a for a in semconv_attributes() | {semconv.GEN_AI_USAGE_INPUT_TOKENS} if scrubbed(a))
    assert not lost, f"scrub would delete modeltel's own attributes: {lost}"


def test_main_config_does_not_sample() -> None:
    config = load_yaml(CONFIG_DIR / "otelcol.yaml")
    assert not any(component_type(p) == "tail_sampling" for p in config["processors"])


def test_tail_sampling_runs_after_spanmetrics_saw_every_span() -> None:
    config = load_yaml(CONFIG_DIR / "otelcol-tail-sampling.yaml")
    pipelines = dict(iter_pipelines(config))
    sampled = [p for p, pl in pipelines.items() if "tail_sampling" in pl.get("processors", [])]
    assert len(sampled) == 1
    sampled_pipeline = pipelines[sampled[0]]
    assert sampled_pipeline["processors"].index("tail_sampling") < sampled_pipeline["processors"].index(
        "batch"
    )
    assert not {"spanmetrics", "sum"} & set(sampled_pipeline["exporters"]), (
        "metrics would count sampled spans"
    )
    # The sampled pipeline is fed only by forward connectors, from pipelines that see all OTLP spans and
    # that also feed spanmetrics and sum.
    for feeder in sampled_pipeline["receivers"]:
        assert component_type(feeder) == "forward", feeder
        sources = [p for p, pl in pipelines.items() if feeder in pl["exporters"]]
        for source in sources:
            pipeline = pipelines[source]
            assert "otlp" in pipeline["receivers"] and "tail_sampling" not in pipeline.get("processors", [])
            assert {"spanmetrics", "sum"} <= set(pipeline["exporters"])


def test_tail_sampling_keeps_errors_slow_spans_and_a_fraction() -> None:
    config = load_yaml(CONFIG_DIR / "otelcol-tail-sampling.yaml")
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    [slow] = policies["ottl_condition"]["ottl_condition"]["span"]
    assert re.search(r"end_time_unix_nano - start_time_unix_nano > \d+", slow)
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100


def test_configs_name_the_pinned_release() -> None:
    for path in COLLECTOR_CONFIGS:
        header = path.read_text(encoding="utf-8").splitlines()[:5]
        assert any(f"otelcol-contrib {PINNED_COLLECTOR_VERSION}" in line for line in header), path.name


# =========================================================================================================
# Tests: docker-compose.yml
# =========================================================================================================

REQUIRED_SERVICES = {"collector", "jaeger", "tempo", "loki", "prometheus", "grafana"}


def test_compose_has_the_stack() -> None:
    assert set(compose_services()) >= REQUIRED_SERVICES


def test_images_are_pinned_to_versions() -> None:
    for name, service in compose_services().items():
        image = service["image"]
        if "@sha256:" in image:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image} has no tag"
        assert tag != "latest" and re.fullmatch(r"v?\d+(\.\d+)+(-[A-Za-z0-9.]+)?", tag), f"{name}: {image}"
    assert compose_services()["collector"]["image"] == (
        f"otel/opentelemetry-collector-contrib:{PINNED_COLLECTOR_VERSION}"
    )


def test_every_mounted_file_exists() -> None:
    for name, service in compose_services().items():
        for mount in service_mounts(service):
            if not mount.named_volume:
                assert (REPO / mount.source).exists(), f"{name}: mounts missing {mount.source}"


def test_named_volumes_are_declared() -> None:
    declared = set(load_compose().get("volumes") or {})
    for name, service in compose_services().items():
        for mount in service_mounts(service):
            if mount.named_volume:
                assert mount.source in declared, f"{name}: volume {mount.source} not declared"


def test_collector_queue_lives_on_a_named_volume() -> None:
    mounts = {m.target: m for m in service_mounts(compose_services()["collector"])}
    for path in COLLECTOR_CONFIGS:
        config = load_yaml(path)
        for extension_id, settings in config["extensions"].items():
            if component_type(extension_id) == "file_storage":
                mount = mounts.get(settings["directory"])
                assert mount and mount.named_volume, (
                    f"{path.name}: {settings['directory']} is not a named volume"
                )


def test_config_files_are_mounted_where_the_commands_read_them() -> None:
    services = compose_services()
    expected = {
        ("collector", "--config"): "collector-config/otelcol.yaml",
        ("tempo", "-config.file"): "collector-config/tempo.yaml",
        ("prometheus", "--config.file"): "collector-config/prometheus.yml",
        ("loki", "-config.file"): "collector-config/loki.yaml",
    }
    for (name, flag), source in expected.items():
        target = command_arg(services[name], flag)
        mounts = {m.target: m.source for m in service_mounts(services[name])}
        assert Path(mounts.get(target, "")) == Path(source), f"{name}: {target} is not {source}"
    collector_volume = next(v for v in services["collector"]["volumes"] if "config.yaml" in str(v))
    assert "${OTELCOL_CONFIG:-otelcol.yaml}" in collector_volume, (
        "the tail-sampling variant must be selectable"
    )


def test_grafana_provisioning_and_dashboards_are_mounted() -> None:
    mounts = {m.target: m.source for m in service_mounts(compose_services()["grafana"])}
    assert Path(mounts["/etc/grafana/provisioning"]) == Path("collector-config/grafana/provisioning")
    [provider] = load_yaml(PROVISIONING_DIR / "dashboards" / "dashboards.yaml")["providers"]
    dashboards_source = mounts[provider["options"]["path"]]
    assert (REPO / dashboards_source).resolve() == DASHBOARD_DIR.resolve()


def test_health_checks() -> None:
    for name, service in compose_services().items():
        if service.get("restart") == "no":
            continue  # one-shot init container
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        urls = [a for a in test if str(a).startswith("http://")]
        assert urls, f"{name}: health check probes no URL"
        host, port = split_host_port(urls[0])
        assert host in {"127.0.0.1", "localhost"} and port in service_listen_ports(service), (
            f"{name}: {urls[0]}"
        )
        if test[1].startswith("/hc/"):
            assert any(m.target == "/hc" for m in service_mounts(service)), f"{name}: /hc not mounted"


def test_depends_on_names_services() -> None:
    services = compose_services()
    for name, service in services.items():
        assert set(service.get("depends_on") or {}) <= set(services), name


def _assert_service_listens(address: str, where: str) -> None:
    host, port = split_host_port(address)
    services = compose_services()
    assert host in services, f"{where}: {address} names no compose service"
    assert port in service_listen_ports(services[host]), f"{where}: {host} does not listen on {port}"


def test_collector_exporters_point_at_compose_services(collector_config: dict[str, Any]) -> None:
    for exporter_id, settings in collector_config["exporters"].items():
        if component_type(exporter_id) in {"otlp_grpc", "otlp_http"}:
            _assert_service_listens(settings["endpoint"], exporter_id)


def test_collector_listens_where_prometheus_scrapes(collector_config: dict[str, Any]) -> None:
    collector_ports = service_listen_ports(compose_services()["collector"])
    exporter_port = split_host_port(collector_config["exporters"]["prometheus"]["endpoint"])[1]
    [reader] = collector_config["service"]["telemetry"]["metrics"]["readers"]
    telemetry = reader["pull"]["exporter"]["prometheus"]
    assert telemetry["host"] == "0.0.0.0"
    assert {exporter_port, telemetry["port"]} <= collector_ports
    targets = {
        t for job in load_yaml(CONFIG_DIR / "prometheus.yml")["scrape_configs"]
        for sc in job["static_configs"] for t in sc["targets"]
    }  # fmt: skip
    assert {f"collector:{exporter_port}", f"collector:{telemetry['port']}"} <= targets


def test_prometheus_scrape_targets_are_compose_services() -> None:
    for job in load_yaml(CONFIG_DIR / "prometheus.yml")["scrape_configs"]:
        for static_config in job["static_configs"]:
            for target in static_config["targets"]:
                host, port = split_host_port(target)
                if host == "localhost":
                    assert port in service_listen_ports(compose_services()["prometheus"]), target
                else:
                    _assert_service_listens(target, f"scrape job {job['job_name']}")
    [pipeline_job] = [j for j in load_yaml(CONFIG_DIR / "prometheus.yml")["scrape_configs"]
                      if j["job_name"] == "otel-collector"]  # fmt: skip
    assert pipeline_job.get("honor_labels") is True, "dashboards group by the exporter's job (= service.name)"


def test_tempo_listens_where_compose_says() -> None:
    tempo = load_yaml(CONFIG_DIR / "tempo.yaml")
    ports = service_listen_ports(compose_services()["tempo"])
    assert tempo["server"]["http_listen_port"] in ports
    for protocol in tempo["distributor"]["receivers"]["otlp"]["protocols"].values():
        host, port = split_host_port(protocol["endpoint"])
        assert host == "0.0.0.0" and port in ports
    assert tempo["storage"]["trace"]["backend"] == "local"
    tempo_mounts = {m.target for m in service_mounts(compose_services()["tempo"]) if m.named_volume}
    for key in ("wal", "local"):
        path = tempo["storage"]["trace"][key]["path"]
        assert any(path.startswith(t + "/") for t in tempo_mounts), f"Tempo {key} path {path} not on a volume"


# =========================================================================================================
# Tests: Grafana provisioning, dashboards, alert rules
# =========================================================================================================


def test_datasources_have_fixed_unique_uids_and_point_at_compose_services() -> None:
    datasources = load_datasources()
    assert {d["type"] for d in datasources} >= {"prometheus", "tempo", "jaeger", "loki"}
    uids = [d["uid"] for d in datasources]
    assert len(uids) == len(set(uids))
    for datasource in datasources:
        _assert_service_listens(datasource["url"], f"datasource {datasource['name']}")


def _uid_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasourceUid" and isinstance(value, str):
                yield value
            elif key == "datasource" and isinstance(value, dict) and "uid" in value:
                yield value["uid"]
            else:
                yield from _uid_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uid_references(item)


def test_every_datasource_uid_referenced_exists() -> None:
    defined = {d["uid"] for d in load_datasources()} | {"__expr__"}
    documents: list[tuple[str, Any]] = [(f"dashboard {n}", d) for n, d in load_dashboards().items()]
    documents += [("alert rules", load_alert_rules()), ("datasources", load_datasources())]
    for where, document in documents:
        unknown = set(_uid_references(document)) - defined
        assert not unknown, f"{where}: unknown datasource uids {unknown}"


def test_one_dashboard_per_domain() -> None:
    dashboards = load_dashboards()
    uids = {d["uid"] for d in dashboards.values()}
    assert uids == {"modeltel-simulation", "modeltel-calibration", "modeltel-inference"}
    for dashboard in dashboards.values():
        assert any(p.get("targets") for p in iter_panels(dashboard["panels"])), dashboard["uid"]


def test_alert_rules_are_wired() -> None:
    rules = {r["uid"]: r for r in load_alert_rules()}
    assert set(rules) == {
        "modeltel-inference-all-rejected",
        "modeltel-calibration-stalled",
        "modeltel-simulation-error-rate",
    }
    for uid, rule in rules.items():
        ref_ids = {node["refId"] for node in rule["data"]}
        assert rule["condition"] in ref_ids, uid
        for node in rule["data"]:
            if node["datasourceUid"] == "__expr__":
                assert node["model"]["expression"] in ref_ids, f"{uid}: {node['refId']} reads a missing query"


def test_queries_name_metrics_modeltel_emits() -> None:
    """The dashboards and alert rules only select series that modeltel or the collector produce."""
    assert not check_queries_against_metrics(MODELTEL_METRICS)


def test_queries_cover_every_domain_metric() -> None:
    """Each documented instrument (but the exporter's own drop counter) shows up in a dashboard or alert."""
    used = set().union(*(names.metrics for _, _, names in prometheus_queries()))
    for metric in MODELTEL_METRICS:
        if metric.name != semconv.METRIC_EXPORT_DROPPED:
            assert prometheus_series(metric) & used, f"{metric.name} appears in no dashboard"
    config = load_yaml(CONFIG_DIR / "otelcol.yaml")
    for metric in collector_derived_metrics(config):
        assert prometheus_series(metric) & used, f"{metric.name} (collector-derived) appears in no dashboard"


def test_span_name_and_status_matchers_name_real_values() -> None:
    span_names = semconv_span_names()
    for where, query, names in prometheus_queries():
        for label, op, value in names.matchers:
            if label == "span_name" and op == "=":
                assert value in span_names, f"{where}: no span is named {value!r}"
            elif label == "span_name" and op == "=~":
                assert any(re.fullmatch(value, s) for s in span_names), f"{where}: {value!r} matches no span"
            elif label == "status_code":
                assert value in {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"}, (
                    f"{where}: {query}"
                )


def test_traceql_names_real_spans_and_attributes() -> None:
    queries = traceql_queries()
    assert queries
    span_names, attributes = semconv_span_names(), semconv_attributes()
    for where, query in queries:
        for op, value in re.findall(r'\bname\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"', query):
            value = _unescape(value)
            ok = value in span_names if op == "=" else any(re.fullmatch(value, s) for s in span_names)
            assert ok, f"{where}: {value!r} matches no span name"
        for attribute in re.findall(r"\bspan\.([a-zA-Z0-9_.]+)", query):
            assert attribute in attributes, f"{where}: unknown attribute {attribute}"


# ---- the hook and the scanner catch what they are meant to catch ------------------------------------------


def test_scanner_reads_promql() -> None:
    names = promql_names(
        'histogram_quantile(0.95, sum by (le, span_name) (rate(a_b_bucket{job=~"$job", span_name=~"x\\\\.y"}'
        "[$__rate_interval]))) / on (job) group_left c_total > 1e-6"
    )
    assert names.metrics == {"a_b_bucket", "c_total"}
    assert names.labels == {"le", "span_name", "job"}
    assert ("span_name", "=~", "x\\.y") in names.matchers


def test_hook_reports_a_metric_the_run_did_not_emit() -> None:
    without_best_loss = [m for m in MODELTEL_METRICS if m.name != semconv.METRIC_CALIBRATION_BEST_LOSS]
    problems = check_queries_against_metrics(without_best_loss)
    assert problems and all("modeltel_calibration_best_loss_ratio" in p for p in problems)
    # A unit other than the one the dashboards assume changes the name, and the hook says so.
    as_dimensionless_gauge = [
        OtelMetric(m.name, "", m.kind) if m.name == semconv.METRIC_CALIBRATION_BEST_LOSS else m
        for m in MODELTEL_METRICS
    ]
    assert check_queries_against_metrics(as_dimensionless_gauge)


def test_otlp_json_reader_feeds_the_hook() -> None:
    def metric(m: OtelMetric) -> dict[str, Any]:
        data: dict[str, Any] = {"dataPoints": []}
        if m.kind == "counter":
            return {"name": m.name, "unit": m.unit, "sum": {**data, "isMonotonic": True}}
        return {"name": m.name, "unit": m.unit, m.kind: data}

    line = json.dumps(
        {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric(m) for m in MODELTEL_METRICS]}]}]}
    )
    read = otel_metrics_from_otlp_json(["", line])
    assert read == set(MODELTEL_METRICS)
    assert not check_queries_against_metrics(read)


# =========================================================================================================
# Tests: logs to Loki (the collector's logs pipeline, the Loki service, Grafana's logs <-> traces links)
# =========================================================================================================

LOKI_OTLP_PATH = "/otlp"
"""Loki's native OTLP endpoint; the otlp_http exporter appends ``/v1/logs`` to it. Loki 3 ingests OTLP
itself, which is why the contrib ``loki`` exporter is deprecated."""


def _logs_pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    return {p: pl for p, pl in iter_pipelines(config) if pipeline_signal(p) == "logs"}


def test_otlp_logs_reach_loki_over_its_native_otlp_endpoint(collector_config: dict[str, Any]) -> None:
    pipelines = _logs_pipelines(collector_config)
    assert pipelines, "no logs pipeline"
    fed_by_otlp = [pl for pl in pipelines.values() if "otlp" in pl["receivers"]]
    assert fed_by_otlp, "no logs pipeline receives OTLP"
    exporters = collector_config["exporters"]
    to_loki = [
        e
        for pl in fed_by_otlp
        for e in pl["exporters"]
        if "loki" in str((exporters.get(e) or {}).get("endpoint"))
    ]
    assert to_loki, "no logs pipeline exports to Loki"
    for exporter_id in to_loki:
        assert component_type(exporter_id) == "otlp_http", f"{exporter_id}: Loki takes OTLP over HTTP only"
        endpoint = exporters[exporter_id]["endpoint"]
        _assert_service_listens(endpoint, exporter_id)
        assert re.fullmatch(r"http://loki:\d+" + re.escape(LOKI_OTLP_PATH), endpoint), endpoint
    assert "loki" not in {component_type(e) for e in exporters}, "the loki exporter is deprecated"


def test_loki_image_is_a_pinned_loki_3() -> None:
    repository, _, tag = compose_services()["loki"]["image"].rpartition(":")
    assert repository == "grafana/loki"
    assert re.fullmatch(r"3\.\d+\.\d+", tag), (
        f"{tag}: native OTLP ingestion needs Loki 3, pinned to a release"
    )


def load_loki() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(CONFIG_DIR / "loki.yaml")
    return config


def test_loki_accepts_otlp_and_stores_on_a_volume() -> None:
    loki = load_loki()
    service = compose_services()["loki"]
    assert loki["server"]["http_listen_port"] in service_listen_ports(service)
    # OTLP attributes become structured metadata, which only the v13 schema (on TSDB) stores.
    assert loki["limits_config"]["allow_structured_metadata"] is True
    [schema] = loki["schema_config"]["configs"]
    assert (schema["schema"], schema["store"]) == ("v13", "tsdb")
    volumes = {m.target for m in service_mounts(service) if m.named_volume}
    prefix = loki["common"]["path_prefix"]
    assert any(prefix == t or prefix.startswith(t + "/") for t in volumes), f"{prefix} is not on a volume"
    for directory in loki["common"]["storage"]["filesystem"].values():
        assert directory.startswith(prefix + "/"), directory
    indexed = [
        a
        for rule in loki["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"]
        if rule["action"] == "index_label"
        for a in rule["attributes"]
    ]
    assert semconv.RESOURCE_RUN_ID in indexed, "logs of one run are one stream selector away"


def test_loki_volume_is_declared_and_handed_to_loki() -> None:
    services = compose_services()
    [volume] = [m.source for m in service_mounts(services["loki"]) if m.named_volume and m.target != "/hc"]
    init = services["init"]
    init_mounts = {m.source: m.target for m in service_mounts(init)}
    assert volume in init_mounts, "init must hand the Loki volume to the uid Loki runs as"
    assert init_mounts[volume] in " ".join(init["command"])
    assert "loki" in (services["grafana"].get("depends_on") or {})


def _datasource(uid: str) -> dict[str, Any]:
    [found] = [d for d in load_datasources() if d["uid"] == uid]
    return found


def _provisioned(text: str) -> str:
    """A provisioning value as Grafana reads it: ``$$`` is a literal ``$``."""
    return text.replace("$$", "$")


def test_loki_trace_ids_link_to_the_traces_data_sources() -> None:
    [loki] = [d for d in load_datasources() if d["type"] == "loki"]
    _assert_service_listens(loki["url"], "datasource Loki")
    fields = loki["jsonData"]["derivedFields"]
    assert fields
    for field in fields:
        # OTLP logs keep trace_id as structured metadata, not in the line: read it as a label.
        assert (field["matcherType"], field["matcherRegex"]) == ("label", "trace_id"), field["name"]
        assert _datasource(field["datasourceUid"])["type"] in {"tempo", "jaeger"}, field["name"]
        assert _provisioned(field["url"]) == "${__value.raw}", field["name"]
    assert {_datasource(f["datasourceUid"])["type"] for f in fields} >= {"tempo"}


def test_spans_link_to_their_logs_in_tempo_and_jaeger() -> None:
    for datasource in load_datasources():
        if datasource["type"] not in {"tempo", "jaeger"}:
            continue
        links = datasource["jsonData"]["tracesToLogsV2"]
        assert _datasource(links["datasourceUid"])["type"] == "loki", datasource["name"]
        assert links["customQuery"] is True
        query = _provisioned(links["query"])
        # The span's own records: its trace and span ids, which Loki holds as structured metadata.
        assert 'trace_id="${__span.traceId}"' in query and 'span_id="${__span.spanId}"' in query, query
        assert query.startswith("{${__tags}}"), query
        for tag in links["tags"]:
            assert tag["key"] in semconv_attributes() | {"service.name"}, tag
            assert tag["value"] == prometheus_label(tag["key"]), "Loki names an OTLP label as Prometheus does"
        assert go_duration_seconds(links["spanStartTimeShift"].lstrip("-")) > 0
        assert go_duration_seconds(links["spanEndTimeShift"]) > 0
