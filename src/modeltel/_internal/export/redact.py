"""Redaction: the one place where a secret-looking value is replaced, before any copy of it is made.

Which keys. A key is cut into words at anything not a letter or digit and where the case changes
(``xApiKey`` is x, api, key). It is secret-looking when one of its words is in the configured list
(``MODELTEL_REDACT_KEYS``), or when its words contain one of the list's multi-word names
(``api_key`` matches ``x-api-key``, ``OPENAI_API_KEY`` and ``xApiKey``). Whole words keep
``gen_ai.usage.input_tokens`` and ``inputTokens`` (word ``tokens``) while ``access_token`` and
``accessToken`` (word ``token``) go. Names modeltel itself defines in :mod:`modeltel._internal.semconv`
(``gen_ai.token.type`` among them) are never secrets. Decisions are cached per key.

What. The value becomes the string ``<redacted>``: in span, event and link attributes, in resource
attributes, in metric point and exemplar attributes, in log record attributes (also inside map
values: a log attribute may be a map). A secret number so stops being a number, and no summary adds
it up. Two metric series that differed only in a secret value become one point.

Text. A log record's body is usually text (the formatted message), and so are its
``exception.message`` and ``exception.stacktrace`` (whose source lines often hold a literal key). In
text, every ``key=value``, ``key: value`` or ``"key": "value"`` whose key is secret-looking by the
rule above has its value replaced (``api_key=<redacted>``; ``Authorization: <redacted>`` takes the
``Bearer`` scheme with it). A body that is a map is redacted like attributes, with its text values
under the text rule. A secret written without a key (a bare token in a sentence) cannot be told
from any other word and stays.

Where. :class:`RedactionStage` heads modeltel's span processors: it redacts a span once, when it
ends, and hands that one object to every processor behind it (each exporter's batch processor,
the job summaries, the progress records), so nothing behind it can see the original. Log records
get the same: modeltel's log record processors sit behind one stage (``export/logs.py``) that
calls :meth:`Redactor.log_record` once per record. Metric readers
collect on their own, so each exporter of a reader sits behind a :class:`RedactingMetricExporter`.
The JSONL entry points, which the SDK may build with no stage in front, apply the same
:class:`Redactor` to each batch themselves. A resource is redacted once (cached by identity): the
SDK gives every span of a provider the same resource object.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link

from modeltel._internal import semconv
from modeltel.formats import MAX_NESTING

REDACTED = "<redacted>"
_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_CACHE_LIMIT = 8192
_RESOURCE_CACHE_LIMIT = 64
_FIELDS = operator.attrgetter("_attributes._dict", "_events._dq", "_links._dq", "_resource")
"""What :meth:`Redactor.span` checks, read from the SDK span's own containers in one C call: the
public properties copy events and links into new tuples on every access."""
_KNOWN_NAMES = frozenset(v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str))
_KEY = re.compile(r"""(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)["']?[ \t]*[:=][ \t]*""")
"""A key and its separator in text: ``key=``, ``key: ``, ``"key": ``. Only the key is consumed, so a
value (``url=http://h/?api_key=...``) is searched for keys of its own."""
_VALUE = re.compile(
    r""""[^"\n]*"|'[^'\n]*'|(?:(?:bearer|basic|token|digest)[ \t]+)?[^\s"',;&()\[\]{}<>]+""", re.IGNORECASE
)
"""The value after a key: quoted, or up to a space or a delimiter, with an HTTP authorization scheme
kept with its credentials."""
_FLAT = frozenset({str, int, float, bool})
_TEXT_ATTRIBUTES = frozenset({"exception.message", "exception.stacktrace"})
"""Log record attributes that are text and get the text rule (see the module docstring)."""

_logger = logging.getLogger(__name__)


def words(key: str) -> list[str]:
    """``key``'s words, lower-cased: cut at non-alphanumerics and at case changes."""
    return [word.lower() for word in _SPLIT.split(key) if word]


def _plain(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The plain dict inside the SDK's ``BoundedAttributes`` (its own ``keys`` walk Python code)."""
    inner = getattr(attributes, "_dict", None)
    return inner if type(inner) is dict else attributes


class Redactor:
    """Decides which keys are secret and returns spans, resources and metrics with their values replaced.

    Every method returns its argument itself when nothing in it is secret (the common case), so a
    caller can tell by identity whether anything changed and nothing is copied for nothing.
    """

    def __init__(self, names: Iterable[str]) -> None:
        normalised = ["_".join(words(n)) for n in names if n.strip()]
        self._words = frozenset(n for n in normalised if n and "_" not in n)
        self._phrases = tuple(n for n in normalised if "_" in n)
        parts = sorted({part for n in normalised for part in n.split("_") if part}, key=len, reverse=True)
        self._text_hint = re.compile("|".join(map(re.escape, parts))) if parts else None
        """Matches any lower-cased text in which a secret-looking key could stand (it holds one of
        the words): text without a separator or without one of them costs two C-level scans
        (an ``IGNORECASE`` search of the same words took seven times as long)."""
        self._cache: dict[str, bool] = {}
        self._clean: set[str] = set()
        """Keys known not to be secret: a whole span's keys are checked against it in one C call."""
        self._resources: dict[int, tuple[Resource, Resource]] = {}
        self._clean_resource: Resource | None = None
        """The last resource found clean: spans of one provider share it, so a span costs one ``is``."""

    # --- keys -------------------------------------------------------------------------------------
    def is_secret(self, key: str) -> bool:
        hit = self._cache.get(key)
        if hit is None:
            found = words(key)
            flat = "_".join(found)
            hit = key not in _KNOWN_NAMES and (
                not self._words.isdisjoint(found) or any(p in flat for p in self._phrases)
            )
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = hit
                if not hit:
                    self._clean.add(key)
        return hit

    def _has_secret(self, attributes: Mapping[str, Any] | None) -> bool:
        if not attributes:
            return False
        keys = _plain(attributes).keys()
        if keys <= self._clean:
            return False
        return any(self.is_secret(key) for key in keys)

    def attributes(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``attributes`` itself when no key is secret, else a dict with the secret values replaced."""
        if not self._has_secret(attributes):
            return attributes
        assert attributes is not None
        return {k: REDACTED if self.is_secret(k) else v for k, v in _plain(attributes).items()}

    def _bounded(self, attributes: Any) -> Any:
        """As :meth:`attributes`, keeping a ``BoundedAttributes``' limits and dropped count."""
        redacted = self.attributes(attributes)
        if redacted is None or redacted is attributes or not isinstance(attributes, BoundedAttributes):
            return redacted
        return _rebound(attributes, redacted)

    # --- resources --------------------------------------------------------------------------------
    def resource(self, resource: Resource | None) -> Resource | None:
        """``resource`` itself when clean (or already redacted), else its redacted copy, made once."""
        if resource is None or resource is self._clean_resource:
            return resource
        hit = self._resources.get(id(resource))
        if hit is not None and hit[0] is resource:
            redacted = hit[1]
        else:
            attributes = self.attributes(resource.attributes)
            if attributes is resource.attributes or dict(attributes or {}) == dict(resource.attributes):
                redacted = resource  # clean, or every secret in it already reads <redacted>
            else:
                redacted = Resource(dict(attributes or {}), resource.schema_url)
            if len(self._resources) >= _RESOURCE_CACHE_LIMIT:
                self._resources.clear()
            self._resources[id(resource)] = (resource, redacted)
            self._resources[id(redacted)] = (redacted, redacted)
        if redacted is resource:
            self._clean_resource = resource
        return redacted

    # --- spans ------------------------------------------------------------------------------------
    def span(self, span: ReadableSpan) -> ReadableSpan:
        """``span`` itself when nothing in it needs redacting, else a redacted copy."""
        try:
            attributes, events, links, resource = _FIELDS(span)
        except AttributeError:  # not the SDK's containers: a span built by hand
            attributes, events, links, resource = span.attributes, span.events, span.links, span.resource
        else:
            # Runs once per span on the application thread: the common span (known keys, no
            # events or links, the provider's own resource) costs one C call and three tests.
            if (
                resource is self._clean_resource
                and not events
                and not links
                and (not attributes or attributes.keys() <= self._clean)
            ):
                return span
        if (
            (resource is self._clean_resource or self.resource(resource) is resource)
            and not self._has_secret(attributes)
            and not (events and any(self._has_secret(e.attributes) for e in events))
            and not (links and any(self._has_secret(link.attributes) for link in links))
        ):
            return span
        return self._copy(span)

    def spans(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        """``spans`` itself when no span needs redacting, else a list with redacted copies."""
        redacted: list[ReadableSpan] | None = None
        for index, span in enumerate(spans):
            copy = self.span(span)
            if copy is not span:
                if redacted is None:
                    redacted = list(spans)
                redacted[index] = copy
        return spans if redacted is None else redacted

    def _copy(self, span: ReadableSpan) -> ReadableSpan:
        events = getattr(span, "_events", span.events)
        links = getattr(span, "_links", span.links)
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=self.resource(span.resource),
            attributes=self._bounded(getattr(span, "_attributes", span.attributes)),
            events=_like(events, [Event(e.name, self._bounded(e.attributes), e.timestamp) for e in events]),
            links=_like(links, [Link(link.context, self._bounded(link.attributes)) for link in links]),
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    # --- log records and text ---------------------------------------------------------------------
    def text(self, value: str) -> str:
        """``value`` itself, or with the value of every secret-looking ``key=value`` pair replaced."""
        hint = self._text_hint
        if hint is None or ("=" not in value and ":" not in value) or hint.search(value.lower()) is None:
            return value
        parts: list[str] = []
        end = 0
        for key in _KEY.finditer(value):
            if key.start() < end or not self.is_secret(key.group("key")):
                continue
            found = _VALUE.match(value, key.end())
            if found is None:
                continue
            secret = found.group(0)
            quote = secret[0] if len(secret) > 1 and secret[0] in "\"'" and secret[-1] == secret[0] else ""
            parts += (value[end : found.start()], quote, REDACTED, quote)
            end = found.end()
        if not parts:
            return value
        parts.append(value[end:])
        return "".join(parts)

    def _nested(self, value: Any, depth: int, text: bool) -> Any:
        """``value`` itself, or a copy with the values of its secret-looking map keys replaced (and
        its strings under the text rule, if ``text``). Deeper than ``MAX_NESTING`` a value is its
        text, as the encoder would write it, under the text rule."""
        kind = type(value)
        if kind is str:
            return self.text(value) if text else value
        if kind in _FLAT or value is None or isinstance(value, bytes | bytearray):
            return value
        if depth >= MAX_NESTING:
            return self.text(repr(value)[:1000])
        if isinstance(value, Mapping):
            items = {
                k: REDACTED if self.is_secret(str(k)) else self._nested(v, depth + 1, text)
                for k, v in value.items()
            }
            return value if _same(list(items.values()), list(value.values())) else items
        if isinstance(value, Sequence) and not isinstance(value, str):
            found = [self._nested(v, depth + 1, text) for v in value]
            return value if _same(found, value) else tuple(found)
        if not text:
            return value
        shown = str(value)
        redacted = self.text(shown)
        return value if redacted is shown else redacted

    def _log_attributes(self, attributes: Any) -> Any:
        """``attributes`` itself, or a copy (keeping a ``BoundedAttributes``' limits) with secret
        values replaced, nested maps included, and the exception's text under the text rule."""
        plain = _plain(attributes) if attributes is not None else None
        if not plain:
            return attributes
        clean = self._clean
        changed: dict[str, Any] | None = None
        for key, value in plain.items():
            if key in clean and type(value) in _FLAT and key not in _TEXT_ATTRIBUTES:
                continue
            if self.is_secret(key):
                new: Any = REDACTED
            elif key in _TEXT_ATTRIBUTES and type(value) is str:
                new = self.text(value)
            else:
                new = self._nested(value, 1, False)
            if new is not value and new != value:
                changed = dict(plain) if changed is None else changed
                changed[key] = new
        if changed is None:
            return attributes
        return _rebound(attributes, changed) if isinstance(attributes, BoundedAttributes) else changed

    def log_record(self, record: Any) -> Any:
        """``record`` (an SDK ``ReadWriteLogRecord`` or ``ReadableLogRecord``) itself when nothing in
        it needs redacting, else a copy of it and of its API record with the secret values of its
        resource, attributes and body replaced (the original, which the SDK hands to every
        processor of its provider, is left as it was)."""
        log = record.log_record
        resource = record.resource
        clean_resource = resource if resource is self._clean_resource else self.resource(resource)
        attributes = log.attributes
        clean_attributes = self._log_attributes(attributes)
        body = log.body
        clean_body = body if body is None else self._nested(body, 0, True)
        if clean_resource is resource and clean_attributes is attributes and clean_body is body:
            return record
        log = copy.copy(log)
        log.attributes, log.body = clean_attributes, clean_body
        record = copy.copy(record)
        object.__setattr__(record, "log_record", log)  # ReadableLogRecord is a frozen dataclass
        object.__setattr__(record, "resource", clean_resource)
        return record

    def log_records(self, records: Sequence[Any]) -> Sequence[Any]:
        """``records`` itself when none needs redacting, else a list with redacted copies."""
        redacted = [self.log_record(record) for record in records]
        return records if _same(redacted, records) else redacted

    # --- metrics ----------------------------------------------------------------------------------
    def metrics(self, data: MetricsData) -> MetricsData:
        """``data`` itself when nothing in it is secret, else a copy with resources and points redacted."""
        resource_metrics = [self._resource_metrics(rm) for rm in data.resource_metrics]
        if _same(resource_metrics, data.resource_metrics):
            return data
        return MetricsData(resource_metrics=resource_metrics)

    def _resource_metrics(self, found: ResourceMetrics) -> ResourceMetrics:
        resource = self.resource(found.resource) or found.resource
        scopes = [self._scope_metrics(sm) for sm in found.scope_metrics]
        if resource is found.resource and _same(scopes, found.scope_metrics):
            return found
        return dataclasses.replace(found, resource=resource, scope_metrics=scopes)

    def _scope_metrics(self, found: ScopeMetrics) -> ScopeMetrics:
        metrics = [self._metric(m) for m in found.metrics]
        if _same(metrics, found.metrics):
            return found
        return dataclasses.replace(found, metrics=metrics)

    def _metric(self, metric: Metric) -> Metric:
        data: Any = metric.data
        points = [self._point(point) for point in data.data_points]
        if _same(points, data.data_points):
            return metric
        return dataclasses.replace(metric, data=dataclasses.replace(data, data_points=_merged(data, points)))

    def _point(self, point: Any) -> Any:
        attributes = self.attributes(point.attributes)
        exemplars = [
            e
            if (found := self.attributes(e.filtered_attributes)) is e.filtered_attributes
            else dataclasses.replace(e, filtered_attributes=found)
            for e in point.exemplars
        ]
        if attributes is point.attributes and _same(exemplars, point.exemplars):
            return point
        return dataclasses.replace(point, attributes=attributes, exemplars=exemplars)


def _same(new: Sequence[Any], old: Sequence[Any]) -> bool:
    """Whether each item of ``new`` is the very object of ``old`` at its place (nothing was copied)."""
    return all(n is o for n, o in zip(new, old, strict=True))


def _rebound(original: BoundedAttributes, items: Mapping[str, Any]) -> BoundedAttributes:
    """``items`` in a ``BoundedAttributes`` with ``original``'s limits, dropped count and mutability
    (a log record's attributes stay writable for the processors behind)."""
    found = BoundedAttributes(
        original.maxlen,
        items,
        immutable=getattr(original, "_immutable", True),
        max_value_len=original.max_value_len,
    )
    found.dropped = original.dropped
    return found


def _like(original: Any, items: list[Any]) -> Sequence[Any]:
    """``items`` in a ``BoundedList`` like ``original`` (same limit and dropped count), else a tuple."""
    if not isinstance(original, BoundedList):
        return tuple(items)
    copy: BoundedList[Any] = BoundedList(original._dq.maxlen)  # type: ignore[attr-defined]
    copy.extend(items)
    copy.dropped = original.dropped
    return copy


def _series(attributes: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in (attributes or {}).items()))


def _merged(data: Sum | Gauge | Histogram | ExponentialHistogram, points: list[Any]) -> list[Any]:
    """Points whose attributes became equal, merged into one point per series.

    Left apart, they would reach a receiver as duplicate series (which Prometheus rejects); sums
    add, a gauge keeps its latest value, histograms add bucket by bucket. Exponential histograms
    (and explicit ones with different bounds) cannot be added without rescaling and stay apart.
    """
    out: dict[tuple[tuple[str, str], ...], Any] = {}
    apart = []
    for point in points:
        key = _series(point.attributes)
        seen = out.get(key)
        if seen is None:
            out[key] = point
            continue
        merged = _merge(data, seen, point)
        if merged is None:
            apart.append(point)
        else:
            out[key] = merged
    return [*out.values(), *apart]


def _merge(data: Any, a: Any, b: Any) -> Any:
    times = {
        "start_time_unix_nano": min(a.start_time_unix_nano, b.start_time_unix_nano),
        "time_unix_nano": max(a.time_unix_nano, b.time_unix_nano),
        "exemplars": [*a.exemplars, *b.exemplars],
    }
    if isinstance(data, Sum) and isinstance(a, NumberDataPoint):
        return dataclasses.replace(a, value=a.value + b.value, **times)
    if isinstance(data, Gauge):
        return b if b.time_unix_nano >= a.time_unix_nano else a
    if isinstance(a, HistogramDataPoint) and list(a.explicit_bounds) == list(b.explicit_bounds):
        return dataclasses.replace(
            a,
            count=a.count + b.count,
            sum=a.sum + b.sum,
            bucket_counts=[x + y for x, y in zip(a.bucket_counts, b.bucket_counts, strict=True)],
            min=min(a.min, b.min),
            max=max(a.max, b.max),
            **times,
        )
    return None


class RedactionRow:
    """What a redaction stage is whatever the signal: a redactor in front of a row of processors,
    which it flushes and shuts down. It goes first among a stage's bases."""

    def __init__(self, redactor: Redactor, processors: Sequence[Any], what: str) -> None:
        self.redactor = redactor
        self.processors = tuple(processors)
        self._what = what
        self._warned = False

    def _redacted(self, redact: Callable[[Any], Any], item: Any) -> Any:
        """``redact(item)``, or None when it failed (a bug): the item is dropped, never passed on
        whole, with one warning."""
        try:
            return redact(item)
        except Exception:
            if not self._warned:
                self._warned = True
                _logger.exception(
                    "modeltel: cannot redact a %s; dropping it rather than export it", self._what
                )
            return None

    def shutdown(self) -> None:
        for processor in self.processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all([processor.force_flush(timeout_millis) for processor in self.processors])


class RedactionStage(RedactionRow, SpanProcessor):
    """Heads modeltel's span processors: each span is redacted once and every processor behind gets
    that same object. A span that cannot be redacted (a bug) is dropped, never passed on whole."""

    def __init__(self, redactor: Redactor, processors: Sequence[SpanProcessor]) -> None:
        super().__init__(redactor, processors, "span")
        self._on_starts = tuple(p.on_start for p in self.processors)
        self._on_ends = tuple(p.on_end for p in self.processors)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for on_start in self._on_starts:
            on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        redacted = self._redacted(self.redactor.span, span)
        if redacted is not None:
            for on_end in self._on_ends:
                on_end(redacted)


class RedactingMetricExporter(MetricExporter):
    """Hands ``inner`` each collection redacted; keeps ``inner``'s temporality and aggregation."""

    def __init__(self, inner: MetricExporter, redactor: Redactor) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.redactor = redactor

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self.inner.export(self.redactor.metrics(metrics_data), timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
