"""Widgets that work in the static HTML book *and* live on Colab.

In the HTML book no kernel runs, so a Python callback (``interact``) never fires there: the slider moves and the
picture stays. The course's pattern is therefore:

- :func:`switcher`: every panel is computed in advance (an image, or HTML such as an audio player), the panels sit
  in an ``ipywidgets.Stack``, and the control's ``index`` is tied to the stack's ``selected_index`` with
  ``jslink``: a link that runs in the browser, so the page switches panels with no kernel at all.
- :func:`explore`: on a live kernel (Colab, or ``COURSE_LIVE=1``) it is a plain ``interact`` that computes a panel
  when asked; in the book build it precomputes the panels and returns a :func:`switcher`.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np


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
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        image.savefig(buf, format="png", dpi=image.dpi, bbox_inches="tight")
        plt.close(image)
        return buf.getvalue()
    from PIL import Image

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
    import ipywidgets as w

    if isinstance(content, w.Widget):
        return content
    if isinstance(content, str):
        return w.HTML(content)
    if hasattr(content, "_repr_html_") and not hasattr(content, "savefig"):
        return w.HTML(content._repr_html_())
    if hasattr(content, "data") and isinstance(getattr(content, "data"), str):  # IPython.display.HTML
        return w.HTML(content.data)
    return w.Image(value=png_bytes(content), format="png", layout=w.Layout(max_width="100%", height="auto"))


def switcher(panels: dict, description: str = "", control: str = "slider"):
    """Precomputed panels switched by a slider or a dropdown, in the browser (works without a kernel).

    ``panels`` maps a label to an image (see :func:`png_bytes`), an HTML string or a widget.
    """
    import ipywidgets as w

    if not panels:
        raise ValueError("switcher needs at least one panel")
    labels = [str(k) for k in panels]
    stack = w.Stack([_panel(v) for v in panels.values()], selected_index=0)
    style = {"description_width": "initial"}
    if control == "slider":
        ctrl = w.SelectionSlider(options=labels, description=description, style=style, continuous_update=True,
                                 layout=w.Layout(width="min(100%, 640px)"))
    elif control == "dropdown":
        ctrl = w.Dropdown(options=labels, description=description, style=style)
    else:
        raise ValueError(f"control must be 'slider' or 'dropdown', not {control!r}")
    link = w.jslink((ctrl, "index"), (stack, "selected_index"))
    box = w.VBox([ctrl, stack])
    box.add_class("course-switcher")
    box.link = link  # kept so tests (and readers) can see what is tied to what
    return box


def explore(fn: Callable, values: Sequence, description: str = "", control: str = "slider"):
    """``fn(value) -> panel`` for each value: live ``interact`` on a kernel, precomputed :func:`switcher` otherwise."""
    if is_live():
        import ipywidgets as w
        from IPython.display import display

        def show(value):
            content = fn(value)
            display(_panel(content) if not isinstance(content, str) else w.HTML(content))

        widget = w.SelectionSlider if control == "slider" else w.Dropdown
        return w.interactive(show, value=widget(options=list(values), description=description))
    return switcher({str(v): fn(v) for v in values}, description=description, control=control)


def audio(wave: np.ndarray, sr: int, label: str = "") -> str:
    """An HTML ``<audio>`` player with the sound embedded (16-bit WAV written by soundfile): plays offline."""
    import soundfile as sf

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
