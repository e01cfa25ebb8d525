#!/usr/bin/env bash
# Colab set-up, run by each chapter's first cell (only on Colab; the Colab rehearsal runs it the same way).
# It never reinstalls Colab's torch, torchvision, torchaudio, numpy or ipywidgets: their installed versions become
# pip constraints, so a package that would need another version fails loudly instead of replacing them.
# Every step is checked: the last line on stderr names what failed and what to do. `.installed` beside colab/ is
# written only when every step finished, so the first cell runs this again after a failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
course="$(dirname "$here")"
fail() { echo "colab/install.sh: $*" >&2; exit 1; }

# Colab's own versions, read with importlib.metadata: that works whatever `pip freeze` prints for them
# (`torch==2.11.0+cu128`, or `torch @ https://…whl` in some runtimes).
pins="$here/.colab-pins.txt"
python - > "$pins" <<'EOF' || fail "could not read the installed versions of Colab's packages (is this Colab's python?)"
from importlib.metadata import PackageNotFoundError, version
for name in ("torch", "torchvision", "torchaudio", "numpy", "ipywidgets"):
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        pass
EOF
python -m pip install -q -c "$pins" -r "$here/requirements.txt" \
  || fail "pip could not install colab/requirements.txt beside Colab's $(tr '\n' ' ' < "$pins")(pip's error is above)"
# CompressAI 1.2.8 declares numpy<2, which Colab's numpy 2 does not meet; it runs with numpy 2, so its dependencies
# come from requirements.txt and it is installed without them. On Python 3.13 pip builds it from source (~1 min).
python -m pip install -q -c "$pins" --no-deps compressai==1.2.8 \
  || fail "CompressAI 1.2.8 did not install (on Python 3.13 it is built from source: pip's error is above)"
python -m pip install -q --no-deps -e "$course" || fail "the course package did not install from $course"
python -c "import lib, compressai, open_clip, pytorch_grad_cam" \
  || fail "the course's packages do not import after the install (the error is above)"

# The data the chapters read from Debian/Ubuntu packages: exactly the `apt=` packages named in lib/assets.py (a test
# keeps the two lists equal). Each one is installed and checked on its own, so a failure names its package.
data_packages=(mate-backgrounds tuxpaint-stamps-default)
if ! dpkg -s "${data_packages[@]}" >/dev/null 2>&1; then
  command -v apt-get >/dev/null || fail "no apt-get here to install ${data_packages[*]}"
  apt-get update -qq >/dev/null || fail "apt-get update failed (no network?): run the first cell again"
  for p in "${data_packages[@]}"; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
      && dpkg -s "$p" >/dev/null 2>&1 \
      || fail "the Ubuntu package $p did not install (apt-get install -y $p shows why); the chapters need it"
  done
fi
touch "$course/.installed"
echo "course installed; Colab's own versions kept: $(tr '\n' ' ' < "$pins")"
