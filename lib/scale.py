"""Scales: one code path, several sizes, each chapter's settings per scale written down as data.

``tiny``  2 CPU cores, offline, minutes; data built from installed packages. What CI and the HTML build execute.
``colab`` one GPU; pretrained weights and real data subsets that it downloads.
``paper`` the paper's full recipe.

The scale is chosen by the environment variable ``COURSE_SCALE`` (or :func:`set_scale`); without it, ``tiny`` on a
machine without CUDA and ``colab`` with one (:func:`explicit` tells the two cases apart).

A chapter holds one frozen :class:`ScaleConfig` per scale it has built (``{"tiny": ..., "colab": ...}``) and asks
for the one in force with :func:`pick`; it then runs that configuration, and never branches on the scale's name.
:func:`pick` records what it returned in :data:`in_force`, so the banner, the scorecard and every figure's stamp
report the configuration that actually ran, not what the environment asked for.

``$COURSE_REHEARSAL=1`` (:func:`rehearsal`) is the Colab rehearsal's budget: :func:`pick` then returns
:meth:`ScaleConfig.rehearsed`, the same configuration with its step and item counts shrunk (``REHEARSAL``) so that
every code path runs in minutes. ``tiny`` is already that small, and is not shrunk (a rehearsal of the CPU path
reuses the book build's cache).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import ClassVar

import torch

SCALES = ("tiny", "colab", "paper")
ENV_VAR = "COURSE_SCALE"
REHEARSAL_ENV_VAR = "COURSE_REHEARSAL"
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
    return "colab" if torch.cuda.is_available() else "tiny"


def explicit() -> bool:
    """Whether the scale was asked for (``$COURSE_SCALE`` or :func:`set_scale`), not defaulted from CUDA."""
    return _override is not None or bool(os.environ.get(ENV_VAR))


def rehearsal() -> bool:
    """Whether ``$COURSE_REHEARSAL`` is ``1``: the Colab rehearsal's budget applies (see :meth:`ScaleConfig.rehearsed`)."""
    return os.environ.get(REHEARSAL_ENV_VAR, "").strip() == "1"


def label_in_force() -> str:
    """The scale in force as a stamp shows it: ``tiny``, or ``colab (rehearsal)`` under the rehearsal's budget."""
    return current() + (" (rehearsal)" if rehearsal() else "")


def set_scale(name: str | None) -> None:
    """Force a scale for this process (``None`` returns to the environment's choice)."""
    global _override
    _override = None if name is None else _check(name)


class ScaleNotBuilt(RuntimeError):
    """The scale asked for has no configuration in this chapter (yet)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleConfig:
    """Base of every chapter's per-scale configuration: a frozen record of everything that differs between scales.

    Subclasses add their fields (keyword-only, so a field without a default may follow one with a default) and set
    ``REHEARSAL``, a ``{field: shrunk value}`` map that keeps every code path but makes it cheap.
    """

    scale: str
    rehearsal: bool = False   # True on a configuration returned by :meth:`rehearsed`

    REHEARSAL: ClassVar[dict] = {}

    def __post_init__(self):
        _check(self.scale)
        unknown = set(self.REHEARSAL) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"{type(self).__name__}.REHEARSAL names fields it does not have: {sorted(unknown)}")

    def rehearsed(self) -> "ScaleConfig":
        """This configuration with the rehearsal's budget (``REHEARSAL``) applied and ``rehearsal=True``."""
        return dataclasses.replace(self, **self.REHEARSAL, rehearsal=True)

    @property
    def name(self) -> str:
        """``ICMConfig(colab)``, ``ICMConfig(colab, rehearsal)``."""
        return f"{type(self).__name__}({self.scale}{', rehearsal' if self.rehearsal else ''})"

    @property
    def label(self) -> str:
        """The scale as a stamp shows it: ``colab`` or ``colab (rehearsal)``."""
        return self.scale + (" (rehearsal)" if self.rehearsal else "")

    @property
    def at_paper_scale(self) -> bool:
        """Whether numbers produced by this configuration are at the paper's scale (a rehearsal never is)."""
        return self.scale == "paper" and not self.rehearsal

    def describe(self) -> dict:
        """The fields as a plain dict (tuples as lists), for the banner, the scorecard and JSON reports."""
        def plain(v):
            if isinstance(v, (tuple, list)):
                return [plain(x) for x in v]
            if isinstance(v, Mapping):
                return {str(k): plain(x) for k, x in v.items()}
            return v
        return {"config": type(self).__name__, **{f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}


in_force: dict[str, ScaleConfig] = {}   # {chapter: the configuration pick() returned}, in the order picked


def pick(configs: Mapping[str, ScaleConfig], chapter: str) -> ScaleConfig:
    """The configuration of ``chapter`` for the current scale (rehearsed under :func:`rehearsal`), recorded in
    :data:`in_force`.

    A scale the chapter has no configuration for stops the chapter when it was asked for (:class:`ScaleNotBuilt`);
    when it was only the default (a GPU was found), the chapter says so loudly and runs ``tiny``.
    """
    for key, cfg in configs.items():
        if _check(key) != cfg.scale:
            raise ValueError(f"chapter {chapter}: the configuration under {key!r} says scale={cfg.scale!r}")
    name = current()
    if name in configs:
        cfg = configs[name]
    elif explicit():
        built = ", ".join(f"COURSE_SCALE={s}" for s in SCALES if s in configs)
        raise ScaleNotBuilt(f"chapter {chapter} has no `{name}` configuration yet: run it with {built}")
    else:
        if "tiny" not in configs:
            raise ScaleNotBuilt(f"chapter {chapter} has neither a `{name}` nor a `tiny` configuration")
        print(f"NOTE: a GPU was found, so the scale defaulted to `{name}`, but chapter {chapter} has no `{name}` "
              f"configuration yet: running its `tiny` configuration (set {ENV_VAR}=tiny to silence this)",
              file=sys.stdout, flush=True)
        cfg = configs["tiny"]
    if rehearsal() and cfg.scale != "tiny":
        cfg = cfg.rehearsed()
    in_force.pop(chapter, None)
    in_force[chapter] = cfg
    return cfg


def picked(config: ScaleConfig | None = None) -> ScaleConfig | None:
    """``config`` if given, else the configuration picked last in this process (``None`` if none was)."""
    if config is not None:
        return config
    return next(reversed(in_force.values()), None)
