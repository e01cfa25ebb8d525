"""Display: what a chapter shows about where its numbers came from, and widgets for the static book and Colab.

- :mod:`lib.display.provenance`  the banner, the stamp under every figure, the paper-vs-ours scorecard, the results at
  a glance, and glue for the book
- :mod:`lib.display.widgets`     widgets that work in the static HTML book (precomputed + ``jslink``) and live on Colab
- :mod:`lib.display.colab_time`  a chapter's time at ``colab`` on a T4: measured on a GPU where recorded, else
  estimated from FLOP counts, saying which
"""

from lib.display import colab_time, provenance, widgets  # noqa: F401
