"""The mirror's makers, one module per chapter: each has ``MAKERS`` (a list of ``(URL regex, maker)``; a maker
returns the bytes of a miniature of that URL's file in the real format), ``FORMATS`` (for each of those regexes:
``{"file", "vouched_by", "verified"}``, the file's short name, what vouches that the miniature has the real
format, and how the real download is checked) and ``urls()`` (every URL that chapter's colab configurations
download, read from the course's own constants)."""

from __future__ import annotations

from . import icm, lseg, spoof

CHAPTERS = [icm, spoof, lseg]
MAKERS = [entry for chapter in CHAPTERS for entry in chapter.MAKERS]
FORMATS = {pattern: entry for chapter in CHAPTERS for pattern, entry in chapter.FORMATS.items()}


def wanted_urls() -> list[str]:
    """Every URL the chapters' colab paths download, in order, each once."""
    return list(dict.fromkeys(url for chapter in CHAPTERS for url in chapter.urls()))
