"""A host application on a disk that stops answering, for the fault suite.

``python storage_app.py MODE SPANS THEN``: before modeltel is imported, ``os.writev`` and
``os.write`` are replaced so that every call on a regular file first sleeps 8 s (``MODE=slow``) or
never returns (``MODE=hang``), as on an NFS mount whose server went away; pipes (stdout, stderr)
are untouched. Modeltel does not know: it calls ``os.writev`` as always. The app then ends
``SPANS`` spans on the main thread, timing each span call, and prints one JSON line (spans, the
worst span call, how many span calls took over a second). ``THEN`` is ``exit`` (return, so atexit
shuts telemetry down), ``wait`` (print ``ready`` and wait for a signal) or ``flush`` (print
``flushing`` and call ``handle.force_flush()`` on the main thread, then wait).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from collections.abc import Sequence

SLOW_WRITE_S = 8.0


def install_fault(mode: str) -> None:
    real_writev, real_write = os.writev, os.write
    never = threading.Event()

    def stall(fd: int) -> None:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            return
        if not regular:
            return
        if mode == "slow":
            time.sleep(SLOW_WRITE_S)
        else:
            never.wait()

    def writev(fd: int, buffers: Sequence[bytes], /) -> int:
        stall(fd)
        return real_writev(fd, buffers)

    def write(fd: int, data: bytes, /) -> int:
        stall(fd)
        return real_write(fd, data)

    os.writev, os.write = writev, write  # type: ignore[assignment]


def main(mode: str, count: int, then: str) -> None:
    install_fault(mode)
    from opentelemetry import trace

    import modeltel

    handle = modeltel.configure()
    tracer = trace.get_tracer("storage.app")
    worst, slow = 0.0, 0
    started = time.monotonic()
    for i in range(count):
        begun = time.perf_counter()
        with tracer.start_as_current_span("work", attributes={"i": i}):
            pass
        took = time.perf_counter() - begun
        worst = max(worst, took)
        slow += took > 1.0
    result = {"spans": count, "max_stall_s": worst, "slow_calls": slow, "run_s": time.monotonic() - started}
    print(json.dumps(result), flush=True)
    if then == "wait":
        print("ready", flush=True)
        threading.Event().wait()
    elif then == "flush":
        print("flushing", flush=True)
        handle.force_flush()
        threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
