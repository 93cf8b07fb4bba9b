# A fresh machine needs only Python 3.11, git and make: every target creates .venv if missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2
# The environment, locked: every package of the dev and book environment at an exact version, with
# PyPI's hashes, for Python 3.11 on Linux x86-64 (README, "What is reproducible"). pyproject.toml keeps
# ranges for people who install the package into their own environment; `make lock` re-resolves the
# lock from them, keeping every pin they still allow; `make lock-upgrade` moves every pin to the
# newest release they allow (then re-execute the chapters: their environment reports print the pins).
LOCK := requirements.lock
LOCK_COMPILE = $(BIN)/uv pip compile pyproject.toml --extra dev --extra book --generate-hashes \
	--python-version 3.11.7 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" --output-file $(LOCK) --quiet

.PHONY: help install lock lock-upgrade test test-fast book book-execute scripts clean

help:
	@echo "make book     build the Jupyter Book into book/_build/html (offline)"
	@echo "make test     run the whole suite: ruff, unit tests and nbval on the notebooks"
	@echo "make test-fast  ruff and the unit tests not marked slow (a few minutes on 2 cores)"
	@echo "make scripts  regenerate scripts/ from the notebooks"
	@echo "make book-execute  build the book re-executing every notebook (slow)"
	@echo "make install  create .venv with exactly the versions in $(LOCK)"
	@echo "make lock     re-resolve $(LOCK) after a change to pyproject.toml's dependencies"
	@echo "make lock-upgrade  move every pin in $(LOCK) to the newest release pyproject.toml allows"

# Exactly the lock, hashes checked (pip itself, setuptools and wheel included); then the package,
# built with the locked setuptools, adding no dependency of its own.
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (regnet-tutorial)"
	@touch $(STAMP)

install: $(STAMP)

lock: $(STAMP)
	$(LOCK_COMPILE)

lock-upgrade: $(STAMP)
	$(LOCK_COMPILE) --upgrade

# One thread per test worker: with -n 2 on 2 cores, oversubscribed OpenMP slows small convolutions 10x.
test: export OMP_NUM_THREADS = 1
# The stored notebook outputs must hold on any x86-64 CPU, so nbval runs twice: with the kernels
# PyTorch picks for this CPU (AVX-512 or AVX2), then with the portable ones (ATEN_CPU_CAPABILITY=default).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope tests \
		--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks book/results.ipynb
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -n $(JOBS) --dist loadscope -p no:cacheprovider \
		--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks book/results.ipynb

test-fast: export OMP_NUM_THREADS = 1
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope tests -m "not slow"

book: $(STAMP)
	$(BIN)/jupyter-book build book -W -n --keep-going
	@echo "The book is in book/_build/html/index.html (serve it: python -m http.server -d book/_build/html)"

book-execute: $(STAMP)
	BOOK_EXECUTE=force $(BIN)/jupyter-book build book --all -W -n --keep-going

scripts: $(STAMP)
	$(BIN)/python -m regnet_tutorial.util.export

clean:
	rm -rf book/_build .pytest_cache
