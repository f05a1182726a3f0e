"""The on/off switch (``MODELTEL_ENABLED``, ``OTEL_SDK_DISABLED``), readable without the settings.

:mod:`modeltel._internal.config` validates every variable with pydantic, which costs a few hundred
milliseconds at start-up; ``modeltel run`` with telemetry switched off must cost next to nothing,
so the switch and the words a flag accepts live here, with no import beyond the standard library,
and config reads its flags with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


def flag(value: str | None) -> bool | None:
    """``value`` as a flag: True, False, or None when it is unset, blank or not a flag word."""
    if value is None or not value.strip():
        return None
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    return None


def switched_off(environ: Mapping[str, str]) -> bool:
    """True only when ``environ`` clearly switches telemetry off and neither switch is malformed.

    A malformed value (``MODELTEL_ENABLED=maybe``) answers False, so the caller takes the path that
    validates the settings and reports it.
    """
    enabled_raw, disabled_raw = environ.get("MODELTEL_ENABLED"), environ.get("OTEL_SDK_DISABLED")
    enabled, disabled = flag(enabled_raw), flag(disabled_raw)
    for raw, parsed in ((enabled_raw, enabled), (disabled_raw, disabled)):
        if raw is not None and raw.strip() and parsed is None:
            return False
    return enabled is False or disabled is True
