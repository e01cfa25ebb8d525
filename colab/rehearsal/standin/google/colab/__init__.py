"""A stand-in for Colab's ``google.colab`` package, for the Colab rehearsal only (never installed elsewhere).

Importing it is what makes a chapter take its Colab branches (``"google.colab" in sys.modules``), as Colab's own
kernel does at start-up. Only what the course calls is here: :func:`drive.mount`.
"""

from google.colab import drive  # noqa: F401
