#!/usr/bin/env bash
# The Colab rehearsal's environment: a venv of the Python that colab/runtime.txt names, with Colab's own packages
# at Colab's versions (from runtime.txt, the one place that names them). Rebuilt only when runtime.txt changes.
# The course's own packages are NOT installed here: each rehearsed notebook installs them with colab/install.sh,
# the way Colab does.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${1:-$root/.cache/colab-rehearsal/venv}"
runtime="$root/colab/runtime.txt"
want="$(sed -n 's/^python==\([0-9.]*\).*/\1/p' "$runtime")"
[ -n "$want" ] || { echo "colab/runtime.txt names no python==X.Y" >&2; exit 1; }
py=""
for c in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want"*/bin/"python$want" 2>/dev/null) "python$want"; do
  if "$c" --version >/dev/null 2>&1; then py="$c"; break; fi   # (a pyenv shim may exist yet not run)
done
[ -n "$py" ] || { echo "Python $want is not installed: the rehearsal imitates Colab's Python $want (pyenv install $want)" >&2; exit 1; }
stamp="$("$py" --version) $(sha256sum "$runtime" | cut -c1-16)"
if [ -f "$dest/.runtime" ] && [ "$(cat "$dest/.runtime")" = "$stamp" ]; then exit 0; fi
echo "building the Colab-like environment in $dest ($stamp)"
rm -rf "$dest"
"$py" -m venv "$dest"
grep -v -e '^#' -e '^python==' -e '^$' "$runtime" > "$dest/runtime-requirements.txt"
if ! "$dest/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir -r "$dest/runtime-requirements.txt" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }; then
  echo "pip could not install colab/runtime.txt's packages (its error is above)" >&2; exit 1
fi
"$dest/bin/python" - "$dest/runtime-requirements.txt" <<'PY'
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    name, want = line.strip().split("==")
    got = version(name)
    if got.split("+")[0] != want:
        raise SystemExit(f"{name}: runtime.txt asks for {want}, the venv has {got}")
print("Colab-like environment ready:", ", ".join(l.strip() for l in open(sys.argv[1]) if l.split("==")[0] in
      ("torch", "numpy", "ipywidgets", "ipykernel", "ipython")))
PY
echo "$stamp" > "$dest/.runtime"
