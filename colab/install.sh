#!/usr/bin/env bash
# Colab set-up, run by each chapter's first cell (only on Colab). It never reinstalls Colab's torch, torchvision,
# torchaudio, numpy or ipywidgets: their installed versions become pip constraints, so a package that would need
# another version fails loudly instead of silently replacing them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pins="$(mktemp)"
python -m pip freeze | grep -iE '^(torch|torchvision|torchaudio|numpy|ipywidgets)==' > "$pins" || true
python -m pip install -q -c "$pins" -r "$here/requirements.txt"
# CompressAI 1.2.8 declares numpy<2, which Colab's numpy 2 does not meet; it runs with numpy 2, so skip its deps
# (installed above: torch-geometric, pytorch-msssim, einops).
python -m pip install -q --no-deps compressai==1.2.8
python -m pip install -q --no-deps -e "$here/.."
# The real data the chapters read at every scale (photos, photo stamps, speech, a speech synthesiser): Debian/Ubuntu
# packages, the Makefile's APT_PACKAGES without the build tools and the browser. A package Ubuntu lacks is reported,
# and the chapter that needs it says which one when it runs.
if command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    mate-backgrounds tuxpaint-stamps-default espeak-ng pocketsphinx-testdata codec2-examples alsa-utils \
    || echo "some data packages did not install; lib.assets names the one a chapter needs"
fi
echo "course installed; Colab's own versions kept:"; cat "$pins"
