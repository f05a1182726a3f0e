"""The formats modeltel reads and writes: one OTLP/JSON codec per direction, and the export formats.

- :mod:`~modeltel.formats.sdk_json`: SDK spans and metrics → OTLP/JSON lines (the write hot path).
- :mod:`~modeltel.formats.otlp`: OTLP/JSON → the reader's model, and the model → OTLP/JSON.
- :mod:`~modeltel.formats.protobuf`: the reader's model → protobuf requests (replay).
- :mod:`~modeltel.formats.jaeger`, :mod:`~modeltel.formats.flat`, :mod:`~modeltel.formats.timeline`:
  Jaeger UI JSON, CSV/JSON rows, the HTML/PNG timeline.
"""
