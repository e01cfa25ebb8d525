"""The mirror's makers, one module per chapter: each has ``MAKERS`` (a list of ``(URL regex, maker)``; a maker
returns the bytes of a miniature of that URL's file in the real format) and ``urls()`` (every URL that chapter's
colab configurations download, read from the course's own constants)."""

from __future__ import annotations

from . import icm, lseg, spoof

CHAPTERS = [icm, spoof, lseg]
MAKERS = [entry for chapter in CHAPTERS for entry in chapter.MAKERS]


def wanted_urls() -> list[str]:
    """Every URL the chapters' colab paths download, in order, each once."""
    return list(dict.fromkeys(url for chapter in CHAPTERS for url in chapter.urls()))
