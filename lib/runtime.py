"""Device, determinism and threads, plus the banner each chapter shows first."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

from lib import scale, validate


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    from lib import validate

    seed = validate.integer(seed, "seed", hint="any whole number, e.g. 0")
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
    from importlib import metadata

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


class Banner:
    """What runs where: scale, hardware, versions, commit. Renders as HTML in a notebook and as text elsewhere.

    With ``config`` (what :func:`lib.scale.pick` returned) the scale shown is the configuration's, with its name and
    whether it is the rehearsal's budget; without one, the scale in force.
    """

    def __init__(self, config: scale.ScaleConfig | None = None, **extra):
        from lib import provenance

        self.config = config
        head = ({"scale": config.label, "config": config.name} if config is not None
                else {"scale": scale.current() + (" (rehearsal)" if scale.rehearsal() else "")})
        self.rows = {**head, "hardware": hardware(), **versions(),
                     "commit": provenance.commit(), **{k: str(v) for k, v in extra.items()}}

    def __repr__(self) -> str:
        return " · ".join(f"{k} {v}" for k, v in self.rows.items())

    def _repr_html_(self) -> str:
        cells = "".join(f"<td><b>{k}</b><br>{v}</td>" for k, v in self.rows.items())
        return f'<table class="course-banner"><tr>{cells}</tr></table>'


def banner(config: scale.ScaleConfig | None = None, **extra) -> Banner:
    """The chapter's first output: return it as the cell's last expression so it renders. Pass the chapter's
    configuration (``lib.scale.pick(...)``) so the banner shows the one that runs."""
    return Banner(config, **extra)
