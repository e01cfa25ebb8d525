"""The Colab rehearsal's loopback mirror: a miniature file in the real format under each real URL's path.

    python colab/rehearsal/mirror.py build FOLDER     # make the files and FOLDER/manifest.json (idempotent)

:func:`serve` serves FOLDER on 127.0.0.1 only: ``{mirror}/{host}{path}[?query]`` answers with the miniature of
``https://{host}{path}[?query]``, and ``{mirror}/manifest.json`` lists ``{"files": {url: {"sha256", "path"}}}``.
``lib.download`` sends every download there when ``COURSE_MIRROR`` is set and checks each file against the
manifest with the same code that checks a real download against its published checksum.

Each maker writes what the real file is, at a small size where the format allows it: Kodak-named 768×512 PNGs,
COCO val2017-named JPEGs, and CompressAI zoo checkpoints of the real architecture with random weights in the zoo's
old key layout (``entropy_bottleneck._biases.N``, ``_matrices.N``, ``_factors.N``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import re
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the course's lib, for its constants and sha256sum


def _rng(url: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(url.encode()).hexdigest()[:8], 16))


def _smooth_image(url: str, width: int, height: int) -> np.ndarray:
    """A photo-like picture: a few blurred colour blobs and edges, different for every URL."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = _rng(url)
    img = Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(20, width // 2), y0 + rng.integers(20, height // 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x0), int(y0), int(x1), int(y1)], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(2)))


def _image_bytes(array: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def kodak_png(url: str) -> bytes:
    return _image_bytes(_smooth_image(url, 768, 512), "PNG")


def coco_jpeg(url: str) -> bytes:
    return _image_bytes(_smooth_image(url, 640, 480), "JPEG")


def compressai_checkpoint(url: str) -> bytes:
    """``bmshj2018-factorized-prior-{q}-{hash}.pth.tar``: the real FactorizedPrior(N, M) for quality q, random
    weights, saved in the zoo's old key layout (what ``compressai.zoo.pretrained.load_pretrained`` converts)."""
    import torch
    from compressai.models import FactorizedPrior
    from compressai.zoo.image import cfgs

    quality = int(re.search(r"-prior-(\d)-", url).group(1))
    torch.manual_seed(quality)
    model = FactorizedPrior(*cfgs["bmshj2018-factorized"][quality])
    model.update(force=True)
    old = {}
    for key, value in model.state_dict().items():
        # CompressAI 1.2's `biases.N` was `_biases.N` when the zoo's files were written
        old[re.sub(r"^entropy_bottleneck\.(biases|matrices|factors)\.", r"entropy_bottleneck._\1.", key)] = value
    buf = io.BytesIO()
    torch.save(old, buf)
    return buf.getvalue()


MAKERS = [
    (r"https?://r0k\.us/graphics/kodak/kodak/kodim\d\d\.png", kodak_png),
    (r"https?://images\.cocodataset\.org/val2017/\d{12}\.jpg", coco_jpeg),
    (r"https://compressai\.s3\.amazonaws\.com/models/v1/bmshj2018-factorized-prior-\d-[0-9a-f]{8}\.pth\.tar",
     compressai_checkpoint),
]


def wanted_urls() -> list[str]:
    """Every URL the chapters' colab paths download today (read from the course's own constants)."""
    from compressai.zoo.image import model_urls

    from lib.icm import config

    urls = []
    for cfg in config.CONFIGS.values():   # the Kodak and COCO images each chapter-1 configuration names
        urls += [cfg.kodak_url.format(i) for i in cfg.kodak_ids or ()]
        urls += [cfg.coco_url.format(i) for i in cfg.coco_ids or ()]
    urls = list(dict.fromkeys(urls))
    urls += list(model_urls["bmshj2018-factorized"]["mse"].values())
    return urls


def local_name(url: str) -> str:
    """Where the mirror keeps ``url``: its host and path (and query), as served under the mirror."""
    parts = urlsplit(url)
    return parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")


def build(folder: str | Path, urls: list[str] | None = None) -> dict:
    """Make the miniature of each URL (skipping those already made) and write ``manifest.json``."""
    from lib.download import sha256sum

    folder = Path(folder)
    files = {}
    for url in urls if urls is not None else wanted_urls():
        maker = next((fn for pattern, fn in MAKERS if re.fullmatch(pattern, url)), None)
        if maker is None:
            raise ValueError(f"the mirror has no maker for {url}: add one to colab/rehearsal/mirror.py MAKERS")
        path = folder / "files" / local_name(url).replace("?", "%3F")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(maker(url))
            tmp.replace(path)
        files[url] = {"sha256": sha256sum(path),
                      "path": str(path.relative_to(folder))}
    manifest = {"files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


@contextlib.contextmanager
def serve(folder: str | Path):
    """Serve a built mirror on a free 127.0.0.1 port; yields its base URL. Logs each request it answers."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    routes = {local_name(url): folder / entry["path"] for url, entry in manifest["files"].items()}
    routes["manifest.json"] = folder / "manifest.json"
    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            key = unquote(parts.path.lstrip("/")) + (f"?{parts.query}" if parts.query else "")
            path = routes.get(key)
            if path is None:
                self.send_error(404, f"not on the mirror: {key}")
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(body)
            served.append(key)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "build":
        raise SystemExit("usage: python colab/rehearsal/mirror.py build FOLDER")
    m = build(sys.argv[2])
    print(f"mirror: {len(m['files'])} files in {sys.argv[2]}")
