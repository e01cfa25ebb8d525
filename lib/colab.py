"""What a chapter's first cell does on Colab after the install: choose where the course cache lives.

Colab's disk is wiped when the runtime is recycled. With ``use_drive(True)`` (the first cell's ``USE_DRIVE``
switch) the cache (:mod:`lib.storage.cache`: memoised results, training checkpoints, downloads) goes to Google Drive, so
a chapter run again after a disconnect resumes its training from the last checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from lib.storage import cache

DRIVE = Path("/content/drive")
CACHE_ON_DRIVE = "MyDrive/repro-course-cache"


class DriveNotMounted(RuntimeError):
    """``USE_DRIVE`` is on but Google Drive is not mounted."""


def use_drive(on: bool, drive: str | os.PathLike = DRIVE) -> Path:
    """Point ``$COURSE_CACHE`` at Google Drive (mounting it first) when ``on``; return the cache folder in use."""
    drive = Path(drive)
    if not on:
        root = cache.cache_dir()
        print(f"course cache: {root} (this runtime's disk, wiped when it is recycled; set USE_DRIVE = True in the "
              f"first cell to keep training and downloads on Google Drive)")
        return root
    if not (drive / "MyDrive").is_dir():
        from google.colab import drive as colab_drive  # exists on Colab only

        colab_drive.mount(str(drive))
    if not (drive / "MyDrive").is_dir():
        raise DriveNotMounted(f"Google Drive is not mounted at {drive}: run the first cell again and allow access "
                              f"to Drive, or set USE_DRIVE = False to keep the cache on this runtime's disk")
    root = drive / CACHE_ON_DRIVE
    root.mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_CACHE"] = str(root)
    print(f"course cache: {root} (Google Drive: an interrupted chapter resumes from its last checkpoint)")
    return root
