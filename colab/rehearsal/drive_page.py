"""Google Drive's answer to a download of a large file, as gdown meets it: ``drive.google.com/uc?export=download&
id=ID`` gives an HTML "can't scan for viruses" page (Content-Type text/html, no Content-Disposition) whose
``#download-form`` sends the browser (and gdown) to ``drive.usercontent.google.com/download`` with the hidden fields
``id``, ``export``, ``confirm`` and ``uuid``; that URL answers the file with a Content-Disposition naming it."""

from __future__ import annotations

import hashlib

PAGE = ('<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>'
        '<meta http-equiv="content-type" content="text/html; charset=utf-8"/></head>\n'
        '<body><div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can\'t scan this file '
        'for viruses.</p><p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={id}">{name}'
        '</a> ({size})</span> is too large for Google to scan for viruses. Would you still like to download this '
        'file?</p>\n'
        '<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
        '<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action" '
        'value="Download anyway"/><input type="hidden" name="id" value="{id}"><input type="hidden" name="export" '
        'value="download"><input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" '
        'value="{uuid}"></form>\n'
        '</div></div></body></html>\n')


def uuid(file_id: str) -> str:
    h = hashlib.sha256(file_id.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def page(file_id: str, name: str, size: int) -> bytes:
    return PAGE.format(id=file_id, name=name, size=f"{size / 2**20:.0f}M", uuid=uuid(file_id)).encode()


def download_key(file_id: str) -> str:
    """The path and query (without the leading slash) of the usercontent download gdown asks for."""
    return f"drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t&uuid={uuid(file_id)}"
