"""``modeltel replay``: stored traces and metrics shipped to an OTLP endpoint later.

For runs on air-gapped machines: the JSONL files are carried to a connected machine and replayed
into a collector or backend, in batches, with the OTel exporters' retry rules, and a cursor in the
data dir so that nothing is sent twice and an interrupted replay resumes where it stopped.

- :mod:`~modeltel.replay.requests`: a stored line as a protobuf ``Export*ServiceRequest``.
- :mod:`~modeltel.replay.transport`: one request over gRPC or HTTP/protobuf, retried when it may help.
- :mod:`~modeltel.replay.cursor`: what was acknowledged, per endpoint and file.
- :mod:`~modeltel.replay.shipping`: the loop over files, lines and batches.

The command itself is :mod:`modeltel.cli.replay`.
"""
