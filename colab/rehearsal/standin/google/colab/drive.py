"""Stand-in for ``google.colab.drive``: ``mount(path)`` links ``path/MyDrive`` to the rehearsal's "Drive" folder.

The folder is ``$REHEARSAL_DRIVE``; it outlives the rehearsal's ``/content`` (which, like Colab's disk, is new for
every notebook), so a chapter run again finds its checkpoints there. Without ``$REHEARSAL_DRIVE`` the mount fails as
a refused authorisation would: nothing appears at ``path``.
"""

import os
from pathlib import Path


def mount(mountpoint: str, force_remount: bool = False, timeout_ms: int = 120000, readonly: bool = False) -> None:
    target = os.environ.get("REHEARSAL_DRIVE")
    if not target:
        print("Mounting failed: the rehearsal has no Drive folder (REHEARSAL_DRIVE is unset)")
        return
    Path(mountpoint).mkdir(parents=True, exist_ok=True)
    link = Path(mountpoint) / "MyDrive"
    if not link.exists():
        Path(target).mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)
    print(f"Mounted at {mountpoint}")
