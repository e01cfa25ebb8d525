"""Facts about the environment a chapter runs in: device, seeds, threads, library versions, hardware, commit."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from lib import validate

_REPO = Path(__file__).resolve().parent.parent


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """``cuda`` when there is one (or ``prefer`` says so), else ``cpu``."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(seed: int = 0, threads: int | None = None, device: str | None = None) -> torch.device:
    """Seed everything, set the CPU thread count and return the device to use.

    On a CPU, ``threads`` defaults to ``$COURSE_THREADS`` or 1: on a shared 2-core machine one thread was several
    times faster than two for the small networks of the ``tiny`` scale (see the README's measurements).
    """
    seed_everything(seed)
    dev = pick_device(device)
    if threads is None:
        threads = validate.env_int("COURSE_THREADS", 1 if dev.type == "cpu" else os.cpu_count() or 1, minimum=1)
    torch.set_num_threads(max(1, threads))
    return dev


def versions(*extra: str) -> dict[str, str]:
    """Versions of Python, torch and any further importable packages named in ``extra``."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in extra:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> str:
    """A short description of the compute in use: GPU name, or CPU architecture and core count."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU {platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s))"


def commit() -> str:
    """The short commit hash of the code in use (``$COURSE_COMMIT`` overrides; ``+dirty`` marks local edits)."""
    if os.environ.get("COURSE_COMMIT"):
        return os.environ["COURSE_COMMIT"]
    try:
        sha = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no", "--",
                                "lib"], capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
