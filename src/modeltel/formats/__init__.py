"""The formats modeltel reads and writes: one OTLP/JSON codec per direction, and the export formats.

- :mod:`~modeltel.formats.sdk_json`: SDK spans and metrics → OTLP/JSON lines (the write hot path).
- :mod:`~modeltel.formats.otlp`: OTLP/JSON → the reader's model, and the model → OTLP/JSON.
- :mod:`~modeltel.formats.protobuf`: the reader's model → protobuf requests (replay).
- :mod:`~modeltel.formats.jaeger`, :mod:`~modeltel.formats.flat`, :mod:`~modeltel.formats.timeline`:
  Jaeger UI JSON, CSV/JSON rows, the HTML/PNG timeline.
"""

MAX_NESTING = 32
"""Arrays and maps inside an attribute value, at most. The writer turns anything deeper into its
text and the reader refuses it, one limit for both, below protobuf's own depth limit (100
messages), which would otherwise make a whole replay request fail."""
