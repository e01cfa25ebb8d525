"""Suite-wide hooks: the hostile-input sweep's coverage list is printed at the end of the run (its test writes it to
artifacts/hostile-coverage.txt; under pytest-xdist a worker's own output is not shown); glibc's allocator told to keep
freed memory for reuse.

By default glibc hands a freed block of a large tensor back to the kernel at once (``mmap``/``trim``), so the next
tensor of that size faults its pages in again: on a convolution network's forward pass on one CPU thread that costs
about as much system time as the arithmetic. Raising both thresholds keeps freed memory in the process (its peak
memory is unchanged; the numbers are the same). Set here for this process (``mallopt``) and, through the
environment, for every process a test starts (pytest-xdist's workers, the book build, the scripts run as commands).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from pathlib import Path

KEEP_FREED = 2**31 - 1   # bytes: glibc's largest threshold (an int)
for _var in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
    os.environ.setdefault(_var, str(KEEP_FREED))
if sys.platform == "linux":
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _libc.mallopt(-3, KEEP_FREED)   # M_MMAP_THRESHOLD
        _libc.mallopt(-1, KEEP_FREED)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):   # not glibc: its allocator keeps its defaults
        pass

COVERAGE = Path(__file__).resolve().parent.parent / "artifacts" / "hostile-coverage.txt"
_START = time.time()


def pytest_terminal_summary(terminalreporter):
    if COVERAGE.exists() and COVERAGE.stat().st_mtime >= _START:
        terminalreporter.section("hostile-input sweep: coverage")
        terminalreporter.write_line(COVERAGE.read_text().rstrip())
