"""Optional hardware telemetry: cleanly absent without nvidia-ml-py, a driver, a GPU, or the
system-metrics instrumentation; GPU figures on inference spans when NVML answers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from modeltel import inference
from modeltel._internal import semconv
from modeltel._internal.domains import hardware
from modeltel._internal.domains.hardware import GpuProbe
from modeltel.testing import capture
from otlp_files import base_env, spans


def test_no_nvml_package_means_no_gpu_attributes(tmp_path: Path) -> None:
    # A real process where importing pynvml fails, as on every machine without the [gpu] extra.
    code = """
    import sys
    sys.modules["pynvml"] = None  # import pynvml -> ImportError
    from modeltel import inference
    from modeltel._internal.domains import hardware, _runtime
    assert hardware.gpu_probe() is None
    with inference.predict(model="m") as p:
        p.outputs([[0.5, 0.5]])
    assert _runtime.active.gpu is None
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (span,) = [s for s, _, _ in spans(tmp_path) if s.name == "inference.predict"]
    assert not [kv.key for kv in span.attributes if ".gpu." in kv.key]


class _NvmlError(Exception):
    pass


def _fake_nvml(devices: int, init_error: bool = False, energy: bool = True) -> SimpleNamespace:
    state = {"energy": 1_000_000}

    def init() -> None:
        if init_error:
            raise _NvmlError("NVML Shared Library Not Found")

    def total_energy(handle: object) -> int:
        if not energy:
            raise _NvmlError("Not Supported")
        state["energy"] += 2500  # 2.5 J per read
        return state["energy"]

    return SimpleNamespace(
        NVMLError=_NvmlError,
        nvmlInit=init,
        nvmlDeviceGetCount=lambda: devices,
        nvmlDeviceGetHandleByIndex=lambda i: ("gpu", i),
        nvmlDeviceGetTotalEnergyConsumption=total_energy,
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=40),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=2 * 1024**3),
        nvmlDeviceGetPowerUsage=lambda h: 150_000,
    )


@pytest.mark.parametrize(("devices", "init_error"), [(0, False), (1, True)])
def test_no_driver_or_no_device_means_no_probe(
    monkeypatch: pytest.MonkeyPatch, devices: int, init_error: bool
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(devices, init_error))
    assert hardware._find_gpu() is None


def test_gpu_figures_on_predict_and_generate_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(1))
    probe = hardware._find_gpu()
    assert probe is not None
    with capture(gpu=probe) as cap:
        with inference.predict(model="m") as p:
            p.outputs(np.array([[0.1, 0.9]]))
        with inference.generate(model="m", provider="local"):
            pass
    for span in (cap.span("inference.predict"), cap.span("chat m")):
        a = span.attributes
        assert a[semconv.INFERENCE_GPU_UTILIZATION] == 0.4
        assert a[semconv.INFERENCE_GPU_MEMORY_USED] == 2 * 1024**3
        assert a[semconv.INFERENCE_GPU_POWER] == 150.0
        assert a[semconv.INFERENCE_GPU_ENERGY] == 2.5


def test_gpu_without_energy_counter_omits_only_energy() -> None:
    probe = GpuProbe(_fake_nvml(1, energy=False), ("gpu", 0))
    found = probe.attributes(probe.energy_mj())
    assert semconv.INFERENCE_GPU_ENERGY not in found and found[semconv.INFERENCE_GPU_POWER] == 150.0


def test_process_metrics_absent_without_the_instrumentation() -> None:
    installed = importlib.util.find_spec("opentelemetry.instrumentation.system_metrics") is not None
    assert hardware.enable_process_metrics() is installed
