"""Scales: one code path, several sizes.

``tiny``  2 CPU cores, offline, minutes; data built from installed packages. What CI and the HTML build execute.
``colab`` one GPU; pretrained weights and real data subsets that it downloads.
``paper`` the paper's full recipe.

The scale is chosen by the environment variable ``COURSE_SCALE`` (or :func:`set_scale`); without it, ``tiny`` on a
machine without CUDA and ``colab`` with one. A scale changes sizes and data, never the algorithm: chapters ask for a
setting with :func:`choose` instead of branching on the scale.
"""

from __future__ import annotations

import os

SCALES = ("tiny", "colab", "paper")
ENV_VAR = "COURSE_SCALE"
_override: str | None = None


def _check(name: str) -> str:
    name = name.strip().lower()
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}: use one of {', '.join(SCALES)} (set {ENV_VAR}=tiny, for example)")
    return name


def current() -> str:
    """The scale in force: :func:`set_scale`, else ``$COURSE_SCALE``, else ``tiny`` without CUDA / ``colab`` with."""
    if _override is not None:
        return _override
    if os.environ.get(ENV_VAR):
        return _check(os.environ[ENV_VAR])
    import torch

    return "colab" if torch.cuda.is_available() else "tiny"


def set_scale(name: str | None) -> None:
    """Force a scale for this process (``None`` returns to the environment's choice)."""
    global _override
    _override = None if name is None else _check(name)


_MISSING = object()


def choose(tiny=_MISSING, colab=_MISSING, paper=_MISSING):
    """The value for the current scale: ``choose(tiny=64, colab=256, paper=512)``.

    ``paper`` falls back to ``colab``'s value and ``colab`` to ``paper``'s, so a setting that is the same at the
    two GPU scales is written once.
    """
    values = {"tiny": tiny, "colab": colab, "paper": paper}
    if values["paper"] is _MISSING:
        values["paper"] = values["colab"]
    if values["colab"] is _MISSING:
        values["colab"] = values["paper"]
    value = values[current()]
    if value is _MISSING:
        raise ValueError(f"no value given for scale {current()!r}")
    return value
