"""The course's shared runtime.

Chapters import this package; it never imports from ``book/``. The core modules are small and do one thing each:

- :mod:`lib.scale`       which scale runs (``tiny`` / ``colab`` / ``paper``) and each chapter's configuration for it
- :mod:`lib.runtime`     device, seeding, threads, and the banner a chapter shows first
- :mod:`lib.download`    a cached, verified fetch (sha256, hash prefix or first-use record) with clear errors
- :mod:`lib.checkpoint`  atomic save, ``weights_only`` load
- :mod:`lib.cache`       on-disk memoisation, so a chapter executed twice trains once
- :mod:`lib.train`       a resumable training loop that also runs under ``torchrun`` (DDP)
- :mod:`lib.provenance`  where a number came from, and the paper-vs-ours scorecard
- :mod:`lib.assets`      the offline data installed from Debian/PyPI, with errors that name the package
- :mod:`lib.widgets`     widgets that work in the static HTML book (precomputed + ``jslink``) and live on Colab
- :mod:`lib.validate`    one check per kind of input (images, waveforms, labels, ...), each error saying what to do
- :mod:`lib.colab`       what a chapter's first cell does on Colab: the course cache on Google Drive or not
- :mod:`lib.colab_time`  a chapter's time at ``colab`` on a T4: measured on a GPU where recorded, else estimated

Each paper adds a subpackage: :mod:`lib.icm`, :mod:`lib.spoof`, :mod:`lib.lseg`.
"""

from lib import assets, cache, checkpoint, colab_time, download, provenance, runtime, scale, train, widgets  # noqa: F401

__version__ = "0.1.0"
