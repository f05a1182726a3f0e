"""Redaction of secret-looking attributes before spans reach a file or an exporter.

A key is secret-looking when one of its words (split on anything not a letter or digit) is in the
configured list (``MODELTEL_REDACT_KEYS``), or when it contains one of the multi-word names in it
(``api_key`` matches ``x-api-key`` and ``openai_api_key``). Matching whole words keeps
``gen_ai.usage.input_tokens`` (word ``tokens``) while ``access_token`` (word ``token``) is redacted.
Names modeltel itself defines in :mod:`modeltel.semconv` (``gen_ai.token.type`` among them) are
never secrets. Decisions are cached per key: a key seen before costs one dict lookup.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link

from modeltel import semconv

REDACTED = "<redacted>"
_WORD = re.compile(r"[^a-z0-9]+")
_CACHE_LIMIT = 8192
_CONTAINERS = operator.attrgetter("_attributes._dict", "_events._dq", "_links._dq")
_KNOWN_NAMES = frozenset(v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str))


class Redactor:
    """Decides which keys are secret and returns spans with those values replaced."""

    def __init__(self, names: Sequence[str]) -> None:
        normalised = [_WORD.sub("_", n.lower()).strip("_") for n in names if n.strip()]
        self._words = frozenset(n for n in normalised if "_" not in n)
        self._phrases = tuple(n for n in normalised if "_" in n)
        self._cache: dict[str, bool] = {}

    def is_secret(self, key: str) -> bool:
        hit = self._cache.get(key)
        if hit is None:
            flat = _WORD.sub("_", key.lower())
            hit = key not in _KNOWN_NAMES and (
                bool(self._words.intersection(flat.split("_"))) or any(p in flat for p in self._phrases)
            )
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = hit
        return hit

    def _has_secret(self, attributes: Mapping[str, Any] | None) -> bool:
        if not attributes:
            return False
        cache = self._cache
        for key in attributes:
            hit = cache.get(key)
            if hit or (hit is None and self.is_secret(key)):
                return True
        return False

    def attributes(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if not self._has_secret(attributes):
            return attributes
        assert attributes is not None
        return {k: REDACTED if self.is_secret(k) else v for k, v in attributes.items()}

    def span(self, span: ReadableSpan) -> ReadableSpan:
        """``span`` itself when nothing needs redacting (the common case), else a redacted copy."""
        if not (
            self._has_secret(span.attributes)
            or any(self._has_secret(e.attributes) for e in span.events)
            or any(self._has_secret(link.attributes) for link in span.links)
        ):
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=self.attributes(span.attributes),
            events=[Event(e.name, self.attributes(e.attributes), e.timestamp) for e in span.events],
            links=[Link(link.context, self.attributes(link.attributes)) for link in span.links],
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def spans(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        """``spans`` itself when no span needs redacting, else a list with redacted copies.

        This runs on every exported batch, so the check reads the SDK span's own containers
        (the public properties copy events and links on every access) and falls back to the
        public API for any other span class.
        """
        redacted: list[ReadableSpan] | None = None
        for index, span in enumerate(spans):
            try:
                attributes, events, links = _CONTAINERS(span)
            except AttributeError:
                needs = self.span(span) is not span
            else:
                needs = self._has_secret(attributes) or bool(
                    (events and any(self._has_secret(e.attributes) for e in events))
                    or (links and any(self._has_secret(link.attributes) for link in links))
                )
            if needs:
                if redacted is None:
                    redacted = list(spans)
                redacted[index] = self.span(span)
        return spans if redacted is None else redacted
