"""What a chapter's first cell does on Colab after the install: choose where the course cache lives.

Colab's disk is wiped when the runtime is recycled. With ``use_drive(True)`` (the first cell's ``USE_DRIVE``
switch) the course cache (:mod:`lib.storage.cache`: memoised results, training checkpoints, the download log and the
first-use record of each download's sha256) goes to Google Drive, so a chapter run again after a disconnect resumes
its training from the last checkpoint. Downloaded files and data archives (many GB; Drive's free tier holds 15 GB)
stay on the runtime's disk, in ``/content/downloads`` (``$COURSE_DOWNLOADS``): a new runtime downloads them again
and checks them against the record kept on Drive.
"""

from __future__ import annotations

import os
from pathlib import Path

from lib.storage import cache

DRIVE = Path("/content/drive")
CACHE_ON_DRIVE = "MyDrive/repro-course-cache"
DOWNLOADS_ON_RUNTIME = Path("/content/downloads")


class DriveNotMounted(RuntimeError):
    """``USE_DRIVE`` is on but Google Drive is not mounted."""


def use_drive(on: bool, drive: str | os.PathLike = DRIVE,
              downloads: str | os.PathLike = DOWNLOADS_ON_RUNTIME) -> Path:
    """Point ``$COURSE_CACHE`` at Google Drive (mounting it first) and ``$COURSE_DOWNLOADS`` at ``downloads`` on the
    runtime's disk when ``on``; return the cache folder in use."""
    drive = Path(drive)
    if not on:
        root = cache.cache_dir()
        print(f"course cache: {root}, downloads: {cache.downloads_dir()} (this runtime's disk, wiped when it is "
              f"recycled; set USE_DRIVE = True in the first cell to keep training checkpoints and results on Google "
              f"Drive)")
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
    os.environ["COURSE_DOWNLOADS"] = str(downloads)
    print(f"course cache: {root} (Google Drive: an interrupted chapter resumes from its last checkpoint; the record "
          f"of each download's sha256 is kept there too)")
    print(f"downloads: {cache.downloads_dir()} (this runtime's disk, which holds the large data sets Drive's free "
          f"15 GB cannot: a new runtime downloads them again and checks them against the record on Drive)")
    return root
