"""Widgets that work in the static HTML book *and* live on Colab, with ipywidgets 7.7 (Colab) and 8.x (the book).

In the HTML book no kernel runs, so a Python callback (``interact``) never fires there: the slider moves and the
picture stays. The course's pattern is therefore:

- :func:`switcher`: every panel is computed in advance (an image, or HTML such as an audio player), the panels sit
  in an ``ipywidgets.Tab``, and the control's ``index`` is tied to the tab's ``selected_index`` with ``jslink``: a
  link that runs in the browser, so the page switches panels with no kernel at all. The book's stylesheet
  (``book/_course/course.css``) hides the tab bar; where it is not loaded (Colab) the tab titles are the labels.
  ``Tab`` rather than ``Stack``: ``Stack`` exists only from ipywidgets 8.0, and Colab ships 7.7.1.
- :func:`live`: a control and a panel that the kernel recomputes when the control's value changes. The callback
  replaces the panel widget; it never calls ``display()`` and uses no ``Output`` widget.
- :func:`explore`: on a live kernel (Colab, or ``COURSE_LIVE=1``) a :func:`live` slider or dropdown over the
  values; in the book build it precomputes the panels and returns a :func:`switcher`.
"""

from __future__ import annotations

import base64
import html
import io
import os
import sys
from collections.abc import Callable, Sequence

import ipywidgets as w
import numpy as np
import soundfile as sf
from PIL import Image


def is_live() -> bool:
    """True on Colab or when ``COURSE_LIVE=1``: a kernel will answer widget callbacks."""
    if os.environ.get("COURSE_LIVE"):
        return os.environ["COURSE_LIVE"] not in ("0", "false", "")
    return "google.colab" in sys.modules


def png_bytes(image) -> bytes:
    """PNG bytes of a PIL image, an HxW(x3|4) array (uint8, or float in [0, 1]), a matplotlib Figure or PNG bytes."""
    if isinstance(image, bytes):
        return image
    if hasattr(image, "savefig"):  # matplotlib Figure
        import matplotlib.pyplot as plt  # deferred: over a second to import, and only figures need it

        buf = io.BytesIO()
        image.savefig(buf, format="png", dpi=image.dpi, bbox_inches="tight")
        plt.close(image)
        return buf.getvalue()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
        image = Image.fromarray(arr)
    if not isinstance(image, Image.Image):
        raise TypeError(f"cannot show a {type(image).__name__} as a picture: pass a PIL image, an HxWx3 array, "
                        f"a matplotlib Figure or PNG bytes")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _panel(content):
    if isinstance(content, w.Widget):
        return content
    if isinstance(content, str):
        return w.HTML(content)
    if hasattr(content, "_repr_html_") and not hasattr(content, "savefig"):
        return w.HTML(content._repr_html_())
    if hasattr(content, "data") and isinstance(getattr(content, "data"), str):  # IPython.display.HTML
        return w.HTML(content.data)
    return w.Image(value=png_bytes(content), format="png", layout=w.Layout(max_width="100%", height="auto"))


def _control(options: list, description: str, control: str):
    style = {"description_width": "initial"}
    if control == "slider":
        return w.SelectionSlider(options=options, description=description, style=style, continuous_update=True,
                                 layout=w.Layout(width="min(100%, 640px)"))
    if control == "dropdown":
        return w.Dropdown(options=options, description=description, style=style)
    raise ValueError(f"control must be 'slider' or 'dropdown', not {control!r}")


def switcher(panels: dict, description: str = "", control: str = "slider"):
    """Precomputed panels switched by a slider or a dropdown, in the browser (works without a kernel).

    ``panels`` maps a label to an image (see :func:`png_bytes`), an HTML string or a widget. Returns a ``VBox``
    (class ``course-switcher``) of the control and a ``Tab`` of the panels; ``.link`` is the ``jslink`` between them.
    """
    if not panels:
        raise ValueError("switcher needs at least one panel")
    labels = [str(k) for k in panels]
    ctrl = _control(labels, description, control)
    deck = w.Tab([_panel(v) for v in panels.values()], selected_index=0)
    for i, label in enumerate(labels):
        deck.set_title(i, label)
    link = w.jslink((ctrl, "index"), (deck, "selected_index"))
    box = w.VBox([ctrl, deck])
    box.add_class("course-switcher")
    box.link = link  # kept so tests (and readers) can see what is tied to what
    return box


def _error_panel(exc: Exception):
    message = html.escape(f"{type(exc).__name__}: {exc}")
    return w.HTML(f'<pre class="course-error">{message}</pre>')


def live(fn: Callable, control):
    """``control`` above the panel ``fn(control.value)``, recomputed in the kernel whenever the value changes.

    Returns a ``VBox`` (class ``course-live``) whose second child is the current panel. ``fn`` may return what
    :func:`switcher` accepts. If ``fn`` raises for a new value, the panel shows the exception's type and message
    instead; for the initial value the exception propagates.
    """
    if not isinstance(control, w.ValueWidget):
        raise TypeError(f"live() needs an ipywidgets control with a value (Text, Dropdown, ...), "
                        f"not {type(control).__name__}")
    box = w.VBox([control, _panel(fn(control.value))])
    box.add_class("course-live")

    def update(change):
        try:
            panel = _panel(fn(change["new"]))
        except Exception as exc:  # shown to the reader, who typed the value
            panel = _error_panel(exc)
        old, box.children = box.children[1], [control, panel]
        old.close()  # its comm and picture go with it

    control.observe(update, names="value")
    return box


def explore(fn: Callable, values: Sequence, description: str = "", control: str = "slider"):
    """``fn(value) -> panel`` for each value: :func:`live` on a kernel, precomputed :func:`switcher` otherwise."""
    values = list(values)
    if not values:
        raise ValueError("explore needs at least one value")
    if is_live():
        return live(fn, _control(values, description, control))
    return switcher({str(v): fn(v) for v in values}, description=description, control=control)


def audio(wave: np.ndarray, sr: int, label: str = "") -> str:
    """An HTML ``<audio>`` player with the sound embedded (16-bit WAV written by soundfile): plays offline."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"audio() plays mono sound: got shape {wave.shape}; mix down with wave.mean(axis=-1)")
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 1.0:
        wave = wave / peak
    buf = io.BytesIO()
    sf.write(buf, wave, int(sr), format="WAV", subtype="PCM_16")
    b64 = base64.b64encode(buf.getvalue()).decode()
    cap = f"<div><small>{label}</small></div>" if label else ""
    return f'<div class="course-audio">{cap}<audio controls preload="none" src="data:audio/wav;base64,{b64}"></audio></div>'
