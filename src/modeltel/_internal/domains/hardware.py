"""Optional hardware telemetry: GPU figures per inference (``[gpu]`` extra), process CPU and memory.

Both are optional and cleanly absent: without ``nvidia-ml-py``, without an NVIDIA driver or without a
GPU, :func:`gpu_probe` returns None and inference spans simply carry no GPU attributes. Process
metrics come from ``opentelemetry-instrumentation-system-metrics`` when it is installed; modeltel
does not hand-write them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from modeltel._internal import semconv as sc

_logger = logging.getLogger(__name__)

PROCESS_METRICS_CONFIG: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": ["user", "system"],
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
}
"""The process-level subset of the system-metrics instrumentation that modeltel turns on."""


class GpuProbe:
    """Reads one GPU through NVML. Every read returns None or omits a figure the GPU does not report."""

    def __init__(self, nvml: Any, device: Any) -> None:
        self._nvml = nvml
        self._device = device

    def energy_mj(self) -> int | None:
        """Total energy the GPU consumed since the driver loaded, in millijoules (Volta and later)."""
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._device))
        except self._nvml.NVMLError:
            return None

    def attributes(self, energy_start_mj: int | None) -> dict[str, float]:
        """Span attributes at the end of an inference: utilisation, memory, power, energy used."""
        nvml, device = self._nvml, self._device
        found: dict[str, float] = {}
        # A figure this GPU does not report is simply absent.
        with contextlib.suppress(nvml.NVMLError):
            found[sc.INFERENCE_GPU_UTILIZATION] = nvml.nvmlDeviceGetUtilizationRates(device).gpu / 100.0
        with contextlib.suppress(nvml.NVMLError):
            found[sc.INFERENCE_GPU_MEMORY_USED] = float(nvml.nvmlDeviceGetMemoryInfo(device).used)
        with contextlib.suppress(nvml.NVMLError):
            found[sc.INFERENCE_GPU_POWER] = nvml.nvmlDeviceGetPowerUsage(device) / 1000.0
        if energy_start_mj is not None:
            end = self.energy_mj()
            if end is not None:
                found[sc.INFERENCE_GPU_ENERGY] = (end - energy_start_mj) / 1000.0
        return found


_probe_lock = threading.Lock()
_probed = False
_probe: GpuProbe | None = None


def _find_gpu() -> GpuProbe | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() < 1:
            return None
        return GpuProbe(pynvml, pynvml.nvmlDeviceGetHandleByIndex(0))
    except pynvml.NVMLError as exc:
        # No driver, no device, or a driver/library mismatch: GPU figures are absent, nothing else.
        _logger.debug("modeltel: no GPU telemetry (%s)", exc)
        return None


def gpu_probe() -> GpuProbe | None:
    """The probe of GPU 0, or None when ``nvidia-ml-py``, a driver or a GPU is missing. Probed once."""
    global _probed, _probe
    with _probe_lock:
        if not _probed:
            _probe, _probed = _find_gpu(), True
        return _probe


def enable_process_metrics() -> bool:
    """Report process CPU and memory through ``opentelemetry-instrumentation-system-metrics``.

    Returns False (and does nothing) when that package is not installed. Uses the global meter
    provider, so call it after :func:`modeltel.configure`.
    """
    try:
        from opentelemetry.instrumentation.system_metrics import (  # type: ignore[import-not-found,unused-ignore]
            SystemMetricsInstrumentor,
        )
    except ImportError:
        return False
    instrumentor = SystemMetricsInstrumentor(config=PROCESS_METRICS_CONFIG)
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return True
