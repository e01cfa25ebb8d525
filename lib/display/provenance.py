"""Where a number came from, and the paper-vs-ours scorecard.

Every table and figure the book shows carries :func:`stamp`: the scale, the hardware, the library versions and the
commit of the code that produced it. The scale is the one of the configuration that ran (what :func:`lib.scale.pick`
returned), not the one the environment asked for. :class:`Scorecard` puts the paper's value beside ours, with the
difference and whether ours was measured at the paper's scale (only a ``paper`` configuration that is not a
rehearsal is; at ``tiny`` the comparison is of the *effect*, not of the absolute number).
"""

from __future__ import annotations

import datetime as _dt
import html

import torch
from IPython.display import HTML, display

from lib import runtime, scale

def scale_label(config: scale.ScaleConfig | None = None) -> str:
    """The scale of ``config``, else of the configuration picked last (:func:`lib.scale.picked`), else the scale in
    force; `` (rehearsal)`` appended under the rehearsal's budget."""
    cfg = scale.picked(config)
    return cfg.label if cfg is not None else scale.label_in_force()


def stamp(config: scale.ScaleConfig | None = None) -> str:
    """``scale tiny · CPU x86_64 (2 cores, 1 torch thread(s)) · torch 2.14.1 · commit abc1234 · 2026-11-26``.

    The scale is :func:`scale_label`'s: the configuration that ran (``config``, or the one picked last)."""
    return (f"scale {scale_label(config)} · {runtime.hardware()} · torch {torch.__version__} · "
            f"commit {runtime.commit()} · {_dt.date.today().isoformat()}")


def caption(fig, extra: str = ""):
    """Write :func:`stamp` (and ``extra``) as a small footnote under a matplotlib figure; returns the figure."""
    fig = getattr(fig, "figure", fig)  # accept an Axes too
    text = stamp() + (f" · {extra}" if extra else "")
    fig.text(0.995, 0.002, text, ha="right", va="bottom", fontsize=6.5, color="0.4")
    return fig


scorecards: list["Scorecard"] = []   # every scorecard made in this process, in order (the rehearsal reports them)


class Scorecard:
    """The paper's values beside ours.

    >>> card = Scorecard("Table 1: base codec", config=cfg)
    >>> card.add("PSNR (dB)", ours=24.1, paper=27.695, source="poster Table 1")

    ``config`` is the chapter's configuration (what :func:`lib.scale.pick` returned; default: the one picked last):
    "at paper scale?" is yes only for a ``paper`` configuration that is not a rehearsal, and the stamp shows its scale.
    """

    def __init__(self, title: str, config: scale.ScaleConfig | None = None):
        self.title = title
        self.config = scale.picked(config)
        self.rows: list[dict] = []
        scorecards.append(self)

    def add(self, metric: str, ours: float | None, paper: float | None = None, *, unit: str = "",
            higher_is_better: bool | None = True, paper_scale: bool | None = None, source: str = "",
            note: str = "") -> "Scorecard":
        """Add one row. ``paper_scale`` defaults to whether the scorecard's configuration is at the paper's scale
        (no configuration: no)."""
        if paper_scale is None:
            paper_scale = self.config is not None and self.config.at_paper_scale
        diff = None if ours is None or paper is None else ours - paper
        self.rows.append({"metric": metric, "paper": paper, "ours": ours, "difference": diff, "unit": unit,
                          "higher_is_better": higher_is_better, "paper_scale": paper_scale, "source": source,
                          "note": note})
        return self

    @staticmethod
    def _fmt(v) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    def __repr__(self) -> str:
        lines = [self.title]
        for r in self.rows:
            d = "—" if r["difference"] is None else f"{r['difference']:+.4g}"
            lines.append(f"  {r['metric']}: paper {self._fmt(r['paper'])} | ours {self._fmt(r['ours'])} | "
                         f"diff {d} | paper scale {'yes' if r['paper_scale'] else 'no'} {r['note']}".rstrip())
        lines.append(f"  ({stamp(self.config)})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Four columns, so that the table fits a phone's width: the metric (with its source and note below it and an
        arrow for the better direction), the paper's value, ours and the difference."""
        at_scale = self.config is not None and self.config.at_paper_scale
        body = []
        for r in self.rows:
            d = "—" if r["difference"] is None else f"{r['difference']:+.4g}"
            unit = f" ({html.escape(r['unit'])})" if r["unit"] else ""
            arrow = {True: " ↑", False: " ↓"}.get(r["higher_is_better"], "")
            small = " · ".join(html.escape(x) for x in (r["source"] and f"paper: {r['source']}", r["note"]) if x)
            if r["paper_scale"] != at_scale:
                small += (" · " if small else "") + ("at" if r["paper_scale"] else "not at") + " the paper's scale"
            metric = html.escape(r["metric"]) + unit + arrow + (f"<br><small>{small}</small>" if small else "")
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in (
                metric, self._fmt(r["paper"]), self._fmt(r["ours"]), d)) + "</tr>")
        return (f'<div class="course-scorecard"><p><b>{html.escape(self.title)}</b></p>'
                '<table><thead><tr><th>metric (↑/↓: better)</th><th>paper</th><th>ours</th><th>ours − paper</th>'
                f'</tr></thead><tbody>{"".join(body)}</tbody></table>'
                f'<p class="course-stamp"><small>ours: {html.escape(stamp(self.config))}; '
                f'{"at" if at_scale else "not at"} the paper\'s scale (compare effects, not absolute values)'
                '</small></p></div>')

    def show(self):
        display(HTML(self._repr_html_()))


class Glance:
    """A chapter's results at a glance: each claim of the paper, its value there, this run's value, and whether the
    claim held in this run.

    >>> g = Glance("What this run shows", config=cfg)
    >>> g.add("finetuning removes the checkerboard", paper="0.225 → 0.038", ours="0.31 → 0.05", held=True)

    ``held`` is True (held), False (did not hold) or None (not tested at this scale). ``note`` (e.g. where the
    paper's values come from, and whether they are verified) is printed under the table."""

    VERDICT = {True: "✓ held", False: "✗ did not hold", None: "– not tested here"}

    def __init__(self, title: str = "Results at a glance", config: scale.ScaleConfig | None = None,
                 note: str = ""):
        self.title, self.note = title, note
        self.config = scale.picked(config)
        self.rows: list[tuple[str, str, str, bool | None]] = []

    def add(self, claim: str, *, paper: str, ours: str, held: bool | None) -> "Glance":
        self.rows.append((claim, paper, ours, held))
        return self

    def __repr__(self) -> str:
        lines = [self.title] + [f"  {c}: paper {p} | this run {o} | {self.VERDICT[h]}" for c, p, o, h in self.rows]
        return "\n".join(lines + [f"  {self.note}"] * bool(self.note) + [f"  ({stamp(self.config)})"])

    def _repr_html_(self) -> str:
        body = "".join(
            f'<tr class="course-held-{str(h).lower()}"><td>{html.escape(c)}</td><td>{html.escape(p)}</td>'
            f"<td>{html.escape(o)}</td><td>{self.VERDICT[h]}</td></tr>" for c, p, o, h in self.rows)
        return ('<div class="course-glance"><table><thead><tr><th>claim</th><th>paper</th><th>this run</th>'
                f'<th>verdict</th></tr></thead><tbody>{body}</tbody></table>'
                + (f'<p class="course-stamp"><small>{html.escape(self.note)}</small></p>' if self.note else "") +
                f'<p class="course-stamp"><small>this run: {html.escape(stamp(self.config))}</small></p></div>')


def glue(key: str, obj):
    """Store ``obj``'s display under ``key`` for the book's ``{glue}`` references (``myst_nb.glue`` without showing
    it); returns ``obj``, so that a cell ending with this call also shows it. Where myst-nb is not installed
    (Colab), nothing reads glued outputs, and only ``obj`` is returned."""
    try:  # deferred: myst-nb is installed for the book's build only, not on Colab
        from myst_nb import glue as _glue
    except ImportError:
        return obj
    _glue(key, obj, display=False)
    return obj


class Banner:
    """What runs where: scale, hardware, versions, commit. Renders as HTML in a notebook and as text elsewhere.

    With ``config`` (what :func:`lib.scale.pick` returned) the scale shown is the configuration's, with its name and
    whether it is the rehearsal's budget; without one, the scale in force.
    """

    def __init__(self, config: scale.ScaleConfig | None = None, **extra):
        self.config = config
        head = ({"scale": config.label, "config": config.name} if config is not None
                else {"scale": scale.label_in_force()})
        self.rows = {**head, "hardware": runtime.hardware(), **runtime.versions(),
                     "commit": runtime.commit(), **{k: str(v) for k, v in extra.items()}}

    def __repr__(self) -> str:
        return " · ".join(f"{k} {v}" for k, v in self.rows.items())

    def _repr_html_(self) -> str:
        cells = "".join(f"<td><b>{k}</b><br>{v}</td>" for k, v in self.rows.items())
        return f'<table class="course-banner"><tr>{cells}</tr></table>'


def banner(config: scale.ScaleConfig | None = None, **extra) -> Banner:
    """The chapter's first output: return it as the cell's last expression so it renders. Pass the chapter's
    configuration (``lib.scale.pick(...)``) so the banner shows the one that runs."""
    return Banner(config, **extra)
