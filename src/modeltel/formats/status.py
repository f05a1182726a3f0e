"""OTLP span status codes, in a module that imports nothing.

The byte-level readers in :mod:`modeltel.read` need only these numbers to tell an error span from
the rest; importing them from :mod:`modeltel.formats.otlp` would load the whole decoder (~15 ms)
for every ``show`` that never decodes a line.
"""

STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2
STATUS_NAMES = {STATUS_UNSET: "UNSET", STATUS_OK: "OK", STATUS_ERROR: "ERROR"}
