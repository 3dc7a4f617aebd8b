# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make test   creates .venv (if missing), installs the lock, runs unit tests + nbval over every chapter
#   make book   creates .venv (if missing), executes every chapter and builds the HTML into _build/html
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test book venv clean lint benchmarks

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

book: $(STAMP)
	rm -rf _build/html _build/jupyter_execute
	$(BIN)/jupyter-book build -W -n --keep-going .

lint: $(STAMP)
	$(BIN)/ruff check pgbook tests benchmarks

benchmarks: $(STAMP)
	$(BIN)/python -m benchmarks all --seeds 3

clean:
	rm -rf _build .pytest_cache
