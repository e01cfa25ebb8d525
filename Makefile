# The two commands of the README:
#   make course   installs what is missing (Debian packages, Python venv, npm) and builds the book at `tiny` scale
#   make test     runs the whole test suite (unit tests, notebooks under nbval, book build, browser test)
SHELL := /bin/bash
PY := .venv/bin/python
export COURSE_SCALE ?= tiny
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0
# On 2 shared cores one torch thread is fastest for the tiny models (docs/build.md: processes and threads).
export COURSE_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

APT_PACKAGES := chromium mate-backgrounds tuxpaint-stamps-default fonts-dejavu-core git make
BOOK_FLAGS := --config "$(CURDIR)/_config.yml" --toc "$(CURDIR)/_toc.yml" -W -n --keep-going

.PHONY: course setup system-packages data book vendor test clean sync colab-rehearsal slides imports gpu-check gpu-wheels paper-rehearsal sweeps

course: setup book slides

setup: system-packages .venv/.installed book/_vendor/.installed

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

# uv installs the pinned set (downloads in parallel: about half of pip's time here, the same packages at the same
# versions); pip installs only uv itself and the course's own package.
UV_VERSION := 0.13.10
.venv/.installed: requirements.txt constraints.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check --no-cache-dir uv==$(UV_VERSION)
	.venv/bin/uv pip install -q --python $(PY) --no-cache -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -c "import torch, torchaudio, compressai, open_clip, pytorch_grad_cam, jupyter_book, nbval, playwright"
	touch $@

# The book's JavaScript (widgets, MathJax, reveal.js) from npm into book/_vendor/, served from the book, never a CDN.
vendor: book/_vendor/.installed

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts

book/_vendor/.installed: node_modules/.package-lock.json
	rm -rf book/_vendor && mkdir -p book/_vendor/html-manager book/_vendor/mathjax
	cp node_modules/requirejs/require.js book/_vendor/require.js
	cp node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js node_modules/@jupyter-widgets/html-manager/dist/*.{woff,woff2,ttf,eot,svg} book/_vendor/html-manager/
	cp -r node_modules/mathjax/es5 book/_vendor/mathjax/es5
	mkdir -p book/_vendor/reveal.js/dist/theme book/_vendor/reveal.js/plugin/notes
	cp node_modules/reveal.js/dist/reveal.{js,css} book/_vendor/reveal.js/dist/
	cp -r node_modules/reveal.js/dist/theme/white.css node_modules/reveal.js/dist/theme/fonts book/_vendor/reveal.js/dist/theme/
	cp node_modules/reveal.js/plugin/notes/notes.js book/_vendor/reveal.js/plugin/notes/
	cp node_modules/reveal.js/LICENSE book/_vendor/reveal.js/
	touch $@

# The chapters' slow, memoised steps (chapter 2's corpus and countermeasures) and the chapter notebooks themselves, in
# parallel processes (one per core; COURSE_JOBS=1: one at a time), into lib.storage.cache and the book's jupyter-cache,
# so that the book build then only renders. A notebook is executed again only when what it depends on changed
# (scripts/prepare.py).
data: setup
	$(PY) -m scripts.prepare

book: setup data
	.venv/bin/jupyter-book build book $(BOOK_FLAGS)
	@echo "The book: $(CURDIR)/_build/html/index.html"

# The seminar decks (scripts/slides.py): one reveal.js deck and PDF handout per chapter notebook, from the notebooks the
# book build executed (cells tagged `slide`/`slide-more`), into _build/html/slides/ beside the book they link to.
slides: book
	$(PY) scripts/slides.py

# First the notebooks that changed since the book build, in parallel (a failure here is not the verdict: a notebook with
# no good execution recorded is executed again under nbval below, and fails there); then the suite, which reuses them.
# The suite on one pytest-xdist worker per core (a test file stays on one worker: its fixtures are built once).
TEST_JOBS ?= auto
test: setup
	-$(PY) -m scripts.prepare
	$(PY) -m pytest tests book/*.ipynb --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:randomly \
	  -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

# The Colab first cell (with _config.yml's repository.url) into every chapter, then re-pair each .md with its .ipynb.
# The Colab rehearsal (colab/rehearsal/run.py): every chapter executed as on Colab, in a Colab-like venv
# (colab/runtime.txt), against a loopback mirror, in its own mount namespace (a fresh /content per notebook).
# Reports: artifacts/colab-rehearsal/*.json. REHEARSAL_ARGS: e.g. `01_icm --scales colab`.
REHEARSAL_ARGS ?= --kill-test 01_icm
colab-rehearsal: setup
	bash colab/rehearsal/venv.sh
	unshare --mount --propagation private .cache/colab-rehearsal/venv/bin/python colab/rehearsal/run.py $(REHEARSAL_ARGS)

# The `paper` scale rehearsed on this CPU (scripts/paper_rehearsal.py): each built recipe under torchrun with two gloo
# processes on the Colab rehearsal's mirror (a rank killed and the job restarted once), a one-process evaluation to
# compare with, then the chapter at COURSE_SCALE=paper COURSE_REHEARSAL=1. Report: artifacts/paper-rehearsal/.
paper-rehearsal: setup
	$(PY) scripts/paper_rehearsal.py

sync:
	$(PY) scripts/sync_notebooks.py

# The chapters' diagnosis sweeps (scripts/sweeps.py): each writes lib/<paper>/results/<name>.json with its provenance,
# which the chapter reads; far beyond the build's budget (about an hour on one free core), resumable, committed.
SWEEPS ?=
sweeps: setup
	$(PY) scripts/sweeps.py $(SWEEPS)

# The GPU check (scripts/gpu_check.py): every chapter's colab path at the rehearsal's budget on the device, timed steps
# at the real colab sizes, the CUDA-only checks; one JSON under artifacts/gpu-check/. ARGS="--device cpu": the CPU run.
ARGS ?= --device cuda
gpu-check: setup
	$(PY) scripts/gpu_check.py $(ARGS)

# What the lent GPU machine's Python 3.12 lacks, as wheels in .whl/ (scripts/gpu_wheels.txt), within its 64 MiB carry.
gpu-wheels:
	python3 scripts/gpu_wheels.py

# The import picture of lib/ (module graph, cycles, imports inside functions) and the layers contract in pyproject.toml.
imports:
	$(PY) scripts/imports.py
	.venv/bin/lint-imports --no-cache

# What the build and its checks write: the book, the decks and the executed notebooks with their jupyter-cache
# (_build/), the reports under artifacts/ (but a committed GPU-check record), the GPU machine's wheels (.whl/), Python's
# and pytest's caches. Kept: what `make setup` installs (.venv, node_modules, book/_vendor, .cache/colab-rehearsal) and
# the course cache ($$COURSE_CACHE, default ~/.cache/repro-course: downloads, trained models): delete those by hand.
clean:
	rm -rf _build book/_build .whl .pytest_cache
	[ ! -d artifacts ] || find artifacts -mindepth 1 -depth ! -path 'artifacts/gpu-check' ! -path 'artifacts/gpu-check/gpu-check.json' -delete
	find lib scripts tests colab benchmarks book -name __pycache__ -type d -prune -exec rm -rf {} +
