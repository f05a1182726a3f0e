"""The domain layer: simulation, calibration and inference scopes on the OpenTelemetry API.

Users import the thin public modules (``modeltel.simulation`` and friends); everything here is
internal. The layer adds span names, attributes and metric instruments and nothing else: it never
writes files and never keeps a list of spans (docs/architecture.md).
"""
