"""The course's shared code, in layers: a module imports only from the layers below its own (``lint-imports``
checks this against ``[tool.importlinter]`` in pyproject.toml; ``tests/test_architecture.py`` runs it).

=========  ===========================================================================================================
layer      modules
=========  ===========================================================================================================
Colab      :mod:`lib.colab`       what a chapter's first cell does on Colab: the course cache on Google Drive or not
papers     :mod:`lib.icm`, :mod:`lib.spoof`, :mod:`lib.lseg`: one per chapter, independent of each other
display    :mod:`lib.display.provenance`  the banner, the stamp under every figure, the paper-vs-ours scorecard, the
           results at a glance; :mod:`lib.display.widgets`  widgets for the static book and live on Colab;
           :mod:`lib.display.colab_time`  a chapter's time at ``colab`` on a T4 (measured on a GPU, or estimated)
recipes    :mod:`lib.recipe`      what the ``paper`` recipes share under ``torchrun``: set-up, sharding by rank,
           evaluation split over the ranks and gathered, results in the course cache
training   :mod:`lib.train`       a resumable training loop that also runs under ``torchrun`` (DDP)
storage    :mod:`lib.storage.download` (a cached, verified fetch), :mod:`lib.storage.checkpoint` (atomic save,
           ``weights_only`` load), :mod:`lib.storage.cache` (on-disk memoisation), :mod:`lib.storage.assets` (the
           offline data installed from Debian/PyPI)
basics     :mod:`lib.scale` (which scale runs, each chapter's configuration for it), :mod:`lib.runtime` (device,
           seeds, threads, versions, hardware, commit), :mod:`lib.images` (images as the tensors the models take)
checks     :mod:`lib.validate`    checks of input that more than one chapter takes, each error saying what to do
=========  ===========================================================================================================
"""

from lib import display, runtime, scale, storage, train  # noqa: F401

__version__ = "0.1.0"
