"""``modeltel replay``: stored traces, metrics and logs shipped to an OTLP endpoint later.

For runs on air-gapped machines: the JSONL files are carried to a connected machine and replayed
into a collector or backend, in batches, with the OTel exporters' retry rules, and a cursor in the
data dir so that a second replay sends only what is new and an interrupted one resumes where it
stopped (at least once: a killed replay repeats at most its last request).

- :mod:`~modeltel.formats.protobuf`: a stored line as a protobuf ``Export*ServiceRequest``.
- :mod:`~modeltel.replay.transport`: one request over gRPC or HTTP/protobuf, retried when it may help.
- :mod:`~modeltel.replay.cursor`: what was acknowledged, per endpoint and file.
- :mod:`~modeltel.replay.shipping`: the loop over files, lines and batches.

The command itself is :mod:`modeltel.cli.replay`.
"""
