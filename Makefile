# The two commands of the README:   make train   and   make test
# Each sets everything up by itself: a virtual environment in .venv (created if absent), the package installed
# editable with the exact versions of constraints.txt, then the job.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mst_nb-installed
ARGS ?= --resume auto
PYTEST_ARGS ?=
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: help install train test docs readme export clean-nbs execute browser lint-nbs lab

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): settings.ini setup.py constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint constraints.txt --editable ".[dev]"
	@touch $@

install: $(STAMP)  ## create .venv if absent and install the pinned package with its dev tools

train: $(STAMP)  ## the main job: pre-train on the bundled sample (ARGS="..." passes flags; default resumes runs/mst)
	$(PY) -m mst_nb.train $(ARGS)

browser:  ## Debian's chromium + chromedriver, for the docs browser test (installed when root)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian's chromium and chromium-driver for the docs browser test"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else \
			echo "WARNING: chromium/chromedriver missing and not root: the docs browser test will be skipped"; \
		fi; \
	fi

test: $(STAMP) browser  ## notebooks == package, notebooks clean, every notebook runs, tests/ pass, docs render
	$(PY) -m pytest tests -ra $(PYTEST_ARGS)

lab: $(STAMP)  ## open the notebooks in JupyterLab (nbs/), to step through them
	$(VENV)/bin/jupyter lab nbs

docs: $(STAMP)  ## build the static docs site into _docs/ (offline; `nbdev_docs` also works where Quarto exists)
	$(PY) tools/docs.py site

readme: $(STAMP)  ## regenerate README.md from nbs/index.ipynb
	$(PY) tools/docs.py readme

export: $(STAMP)  ## notebooks -> mst_nb/
	$(VENV)/bin/nbdev_export

execute: $(STAMP)  ## re-run the notebooks (NBS="nbs/00_core.ipynb ...") and store their outputs, then clean them
	$(PY) tools/docs.py execute $(NBS)
	$(VENV)/bin/nbdev_clean

clean-nbs: $(STAMP)  ## strip notebook metadata the way CI checks it
	$(VENV)/bin/nbdev_clean
