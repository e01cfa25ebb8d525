"""The hostile-input sweep's machinery: which public functions ``lib`` has, how a bad input is drawn for each kind of
input, and how an outcome is judged.

An outcome is acceptable when the call either returns a result that the case's ``check`` accepts, or raises an
error that

1. is a ``ValueError``, ``TypeError`` or ``FileNotFoundError``, or an error class defined in ``lib``;
2. was raised from a frame inside ``lib/`` (the innermost frame of its traceback), not from torch, numpy or the OS;
3. names the argument that was bad (the case's ``names``: the argument's name, or the path it names);
4. says what to do: at least 40 characters, with a clause after a ``:``, ``;`` or ``(``, an ``e.g.`` or a
   ``must``.

A case without ``check`` must be refused: a bad input that returns is a silent wrong result.
"""
from __future__ import annotations

import errno
import importlib
import inspect
import pkgutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import strategies as st

import lib

LIB_DIR = Path(lib.__file__).resolve().parent
NAN, INF = float("nan"), float("inf")


# --- what lib offers ---------------------------------------------------------------------------------------------
def public_api() -> dict[str, Any]:
    """``"module.name" -> object`` for every public function and class defined in each ``lib`` module (its
    ``__all__`` where it has one, else the names without a leading underscore)."""
    out = {}
    for info in sorted(pkgutil.walk_packages(lib.__path__, "lib."), key=lambda i: i.name):
        mod = importlib.import_module(info.name)
        names = getattr(mod, "__all__", None)
        names = names if names is not None else [n for n in vars(mod) if not n.startswith("_")]
        for n in names:
            obj = getattr(mod, n)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == mod.__name__:
                out[f"{mod.__name__}.{n}"] = obj
    return out


def lib_errors() -> tuple[type, ...]:
    """The exception classes ``lib`` defines, plus the built-in ones its validation raises."""
    own = {o for o in public_api().values() if inspect.isclass(o) and issubclass(o, BaseException)}
    from lib import validate

    own.add(validate.StorageError)
    return (ValueError, TypeError, FileNotFoundError, *sorted(own, key=lambda c: c.__name__))


# --- one bad input -------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One kind of bad input for one argument of one function."""
    kind: str                                   # the input kind (see KINDS)
    names: Any                                  # what the error must name (the argument), or value -> that
    draw: st.SearchStrategy                     # draws the bad value
    call: Callable[[Any], Any]                  # calls the function with it
    check: Callable[[Any, Any], bool] | None = None   # (result, value) -> is the result right? None: must refuse
    extra: dict = field(default_factory=dict)


KINDS = ("dtype", "range", "shape", "units", "nan", "empty", "duplicates", "lengths", "type", "path", "file",
         "disk")


class Verdict(Exception):
    """A sweep failure: what was given and what happened."""


def raised_in_lib(err: BaseException) -> bool:
    tb = err.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return last is not None and Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(LIB_DIR)


def says_what_to_do(msg: str) -> bool:
    return len(msg) >= 40 and any(s in msg for s in (": ", "; ", "(", "e.g.", " must "))


def judge(case: Case, value, errors: tuple[type, ...]) -> str:
    """Run ``case`` on ``value``: ``"refused"`` or ``"ok"``; :class:`Verdict` when the outcome is not acceptable."""
    try:
        result = case.call(value)
    except errors as err:
        msg = str(err)
        where = traceback.format_exception(err)[-2:] if not raised_in_lib(err) else ""
        if where:
            raise Verdict(f"[{case.kind}] {short(value)}: {type(err).__name__} raised outside lib/: "
                          f"{''.join(where).strip()[-600:]}") from err
        names = case.names(value) if callable(case.names) else case.names
        if names not in msg:
            raise Verdict(f"[{case.kind}] {short(value)}: the error does not name {names!r}: {msg}") from err
        if not says_what_to_do(msg):
            raise Verdict(f"[{case.kind}] {short(value)}: the error does not say what to do: {msg}") from err
        return "refused"
    except Exception as err:  # noqa: BLE001  (anything else is a cryptic traceback)
        tail = "".join(traceback.format_exception(err)[-3:]).strip()[-800:]
        raise Verdict(f"[{case.kind}] {short(value)}: cryptic {type(err).__name__}: {tail}") from err
    if case.check is None:
        raise Verdict(f"[{case.kind}] {short(value)}: accepted without a word (returned {short(result)})")
    if not case.check(result, value):
        raise Verdict(f"[{case.kind}] {short(value)}: returned a wrong result {short(result)}")
    return "ok"


def short(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
    if isinstance(v, np.ndarray):
        return f"ndarray{v.shape} {v.dtype}"
    r = repr(v)
    return r if len(r) < 120 else r[:117] + "..."


# --- strategies per input kind ---------------------------------------------------------------------------------------
def _with(t: torch.Tensor, flat: int, v: float) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[flat % t.numel()] = v
    return t


def images(kind: str, size: int = 32, batch: bool = True, stride: bool = True) -> st.SearchStrategy:
    """Bad (1, 3, size, size) images (or (3, size, size) with ``batch=False``) of one kind; ``stride=False`` leaves
    out sizes that only a model with a stride refuses."""
    shape = (1, 3, size, size) if batch else (3, size, size)
    seed = st.integers(0, 2**16)
    base = seed.map(lambda s: torch.rand(shape, generator=torch.Generator().manual_seed(s)))
    if kind == "dtype":
        return st.tuples(base, st.sampled_from([torch.uint8, torch.int32, torch.int64])).map(
            lambda p: (p[0] * 255).to(p[1]))
    if kind == "range":
        return st.tuples(base, st.one_of(st.floats(1.5, 255), st.floats(-255, -0.1))).map(
            lambda p: p[0] * p[1] if p[1] > 0 else p[0] + p[1])
    if kind == "nan":
        return st.tuples(base, seed, st.sampled_from([NAN, INF, -INF])).map(lambda p: _with(p[0], p[1], p[2]))
    if kind == "shape":
        bad = [(size, size, 3), (size, size), (1, 1, size, size), (1, 4, size, size), (1, 1, 3, size, size)]
        bad += [(1, 3, size + 3, size)] if stride else []
        return st.sampled_from(bad).map(lambda s: torch.rand(s))
    if kind == "empty":
        return st.sampled_from([(0, 3, size, size), (1, 3, 0, 0)] if batch else [(3, 0, 0), (3, 0, size)]).map(
            lambda s: torch.rand(s))
    raise KeyError(kind)


def waves(kind: str, n: int = 4000) -> st.SearchStrategy:
    """Bad waveforms of one kind (numpy or torch, 1-D unless the kind is ``shape``)."""
    seed = st.integers(0, 2**16)
    base = seed.map(lambda s: np.random.default_rng(s).uniform(-0.5, 0.5, n).astype(np.float32))
    if kind == "dtype":
        return base.map(lambda a: (a * 32767).astype(np.int16))
    if kind == "nan":
        return st.tuples(base, seed, st.sampled_from([NAN, INF, -INF])).map(
            lambda p: np.where(np.arange(n) == p[1] % n, p[2], p[0]).astype(np.float32))
    if kind == "shape":
        return base.map(lambda a: np.stack([a, a]))                     # stereo, channels first
    if kind == "empty":
        return st.sampled_from([np.zeros(0, np.float32), np.zeros(100, np.float32) + 0.1,
                                np.zeros(n, np.float32)])                 # empty, too short, silent
    raise KeyError(kind)


def wave_batch(kind: str, n: int = 4000) -> st.SearchStrategy:
    """Bad (batch, samples) tensors."""
    if kind == "dtype":
        return st.sampled_from([torch.int16, torch.int64, torch.uint8]).map(
            lambda d: (torch.rand(2, n) * 100).to(d))
    if kind == "nan":
        return st.tuples(st.integers(0, 2 * n - 1), st.sampled_from([NAN, INF])).map(
            lambda p: _with(torch.rand(2, n) - 0.5, p[0], p[1]))
    if kind == "shape":
        return st.sampled_from([(n,), (2, 1, n), (2, 2, n)]).map(lambda s: torch.rand(s) - 0.5)
    raise KeyError(kind)


def whole_numbers(minimum: int = 1, maximum: int | None = None) -> st.SearchStrategy:
    """Values that are not whole numbers within [minimum, maximum]."""
    bad = [minimum - 1, -7, 2.5, NAN, INF, "4", None, True, [4]]
    if maximum is not None:
        bad.append(maximum + 1)
    return st.sampled_from(bad)


def sample_rates() -> st.SearchStrategy:
    return st.sampled_from([0, -16000, 0.5, NAN, "16k", None, 16000.5])


def names_leaving() -> st.SearchStrategy:
    """File or folder names that would leave their folder."""
    return st.one_of(st.sampled_from(["..", "../x.bin", "../../etc/x", "/tmp/abs.bin", "a/../../b", "sub/../../x",
                                      "a\0b", ""]),
                     st.text(alphabet="ab./", min_size=1, max_size=6).filter(
                         lambda s: ".." in s.split("/") or s.startswith("/")))


def label_sets() -> st.SearchStrategy:
    return st.sampled_from([[], "sky, dog", ["sky", "sky"], ["dog", "Dog "], ["sky", ""], [1, 2], None])


def segments(kind: str) -> st.SearchStrategy:
    """Bad (start_s, end_s, kind) lists."""
    t = st.floats(0, 2, allow_nan=False)
    if kind == "units":       # strings for times, milliseconds, or a start after the end
        return st.one_of(
            st.tuples(t, t).map(lambda p: [(str(p[0]), str(p[0] + p[1] + 0.1), "SS")]),
            st.tuples(t, t).map(lambda p: [(p[0] * 1000, (p[0] + p[1]) * 1000 + 500, "SS")]),
            st.tuples(t, t).map(lambda p: [(p[0] + p[1] + 0.1, p[0], "SS")]))
    if kind == "nan":
        return st.sampled_from([[(NAN, 1.0, "SS")], [(0.0, INF, "BS")], [(-1.0, 0.5, "BS")]])
    if kind == "type":
        return st.sampled_from([[(0.0, 1.0, "XX")], [(0.0, 1.0)], [(0.0, 1.0, "SS", 4)], [(0.0, 1.0, None)]])
    raise KeyError(kind)


def disk_fault(code: int):
    """An ``OSError`` with ``code`` (ENOSPC: a full disk, EROFS: a read-only folder)."""
    return OSError(code, {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system",
                          errno.EACCES: "Permission denied"}[code])


def files(tmp: Path, good: Path) -> st.SearchStrategy:
    """Paths of bad files made from a good one: truncated, empty, another format, missing, a folder."""
    data = good.read_bytes()

    def make(which: str) -> Path:
        p = tmp / f"bad-{which}{good.suffix}"
        if which == "truncated":
            p.write_bytes(data[: max(1, len(data) // 3)])
        elif which == "empty":
            p.write_bytes(b"")
        elif which == "other":
            p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
        elif which == "text":
            p.write_text("<html><body>Quota exceeded</body></html>\n")
        elif which == "missing":
            p = tmp / "no-such-file" / good.name
        elif which == "folder":
            p = tmp / f"folder{good.suffix}"
            p.mkdir(exist_ok=True)
        return p

    return st.sampled_from(["truncated", "empty", "other", "text", "missing", "folder"]).map(make)
