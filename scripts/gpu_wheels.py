"""Download what the lent GPU machine's Python lacks (``scripts/gpu_wheels.txt``) as wheels into ``.whl/``.

    python3 scripts/gpu_wheels.py            # `make gpu-wheels`

Each ``name==version`` line becomes one wheel for CPython 3.12 on x86-64 Linux (``pip download --no-deps
--only-binary=:all:`` over the manylinux tags). A package published only as a source archive is built here with
``pip wheel --no-deps`` and kept only if the result is pure Python (``-none-any``): a compiled one built here would
not be for that machine's Python. Prints each wheel and the total, and fails above the 64 MiB a device call carries.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST, DEST = ROOT / "scripts" / "gpu_wheels.txt", ROOT / ".whl"
LIMIT = 64 * 2**20
PLATFORMS = ["manylinux_2_35", "manylinux_2_34", "manylinux_2_31", "manylinux_2_28", "manylinux_2_27",
             "manylinux_2_24", "manylinux_2_17", "manylinux2014", "manylinux1"]


def specs() -> list[str]:
    out = []
    for line in LIST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line):
                raise SystemExit(f"{LIST.name}: {line!r} is not name==version")
            out.append(line)
    return out


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def main() -> int:
    shutil.rmtree(DEST, ignore_errors=True)
    DEST.mkdir()
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    tags = [a for p in PLATFORMS for a in ("--platform", f"{p}_x86_64")]
    for spec in specs():
        r = subprocess.run(pip + ["download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                                  "--implementation", "cp", *tags, "-d", str(DEST), spec],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"{spec}: no wheel for CPython 3.12 on x86-64 Linux; building it from its source archive")
            before = set(DEST.iterdir())
            subprocess.run(pip + ["wheel", "--no-deps", "--no-binary", spec.split("==")[0], "-w", str(DEST), spec],
                           check=True)
            built = set(DEST.iterdir()) - before
            if not all(p.name.endswith("-none-any.whl") for p in built):
                raise SystemExit(f"{spec} builds a compiled wheel ({[p.name for p in built]}): it cannot be built "
                                 f"here for the GPU machine; find a version with a manylinux cp312 wheel")
    wheels = sorted(DEST.glob("*.whl"))
    names = {norm(p.name.split("-")[0]) for p in wheels}
    missing = [s for s in specs() if norm(s.split("==")[0]) not in names]
    total = sum(p.stat().st_size for p in wheels)
    for p in wheels:
        print(f"  {p.stat().st_size / 2**20:7.2f} MiB  {p.name}")
    print(f"gpu-wheels: {len(wheels)} wheels, {total / 2**20:.1f} MiB in all (the device call carries 64 MiB, "
          f"with the working tree)")
    if missing or len(wheels) != len(specs()):
        raise SystemExit(f"gpu-wheels: expected one wheel per line of {LIST.name}; missing {missing}")
    if total > LIMIT:
        raise SystemExit("gpu-wheels: over the 64 MiB a device call carries: drop a package from the list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
