"""Suite-wide hooks: the hostile-input sweep's coverage list is printed at the end of the run (its test writes it to
artifacts/hostile-coverage.txt; under pytest-xdist a worker's own output is not shown)."""
from __future__ import annotations

import time
from pathlib import Path

COVERAGE = Path(__file__).resolve().parent.parent / "artifacts" / "hostile-coverage.txt"
_START = time.time()


def pytest_terminal_summary(terminalreporter):
    if COVERAGE.exists() and COVERAGE.stat().st_mtime >= _START:
        terminalreporter.section("hostile-input sweep: coverage")
        terminalreporter.write_line(COVERAGE.read_text().rstrip())
