# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make test   creates .venv (if missing), installs the lock, runs unit tests + nbval over every chapter
#   make book   creates .venv (if missing), executes every chapter (two at a time) and builds the HTML into _build/html
#   make pdf    after make book: the whole book as one PDF (LaTeX builder, xelatex), reusing
#               the build's executed notebooks; writes _build/latex/pgbook.pdf
#   make mutants  the mutation suite (slow, not part of make test): every mutant of mutation/mutants.py
#               against the unit tests and its chapters; writes mutation/REPORT.md and README's table
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-unit check-outputs book pdf book-part venv clean lint benchmarks mutants

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

# CI executes every chapter once: the unit tests, then the book build (which executes every
# chapter), then check-outputs compares the executed notebooks' checked cells with the stored
# outputs, as nbval would have in a second execution (.ci/check_outputs.py).
test-unit: $(STAMP)
	$(BIN)/pytest tests

check-outputs: $(STAMP)
	$(BIN)/python .ci/check_outputs.py _build/jupyter_execute

# Every chapter is executed afresh, two at a time, into an emptied notebook cache
# (.ci/execute_book.py); the build then takes the outputs from that cache.
book: $(STAMP)
	rm -rf _build/html _build/jupyter_execute _build/.doctrees
	$(BIN)/python .ci/execute_book.py
	$(BIN)/jupyter-book build -W -n --keep-going .

# The LaTeX builder reads the doctrees that make book left (nothing is executed again); the
# PDF is then copied into the HTML site, which links it from the intro. Needs Debian's
# texlive-xetex, texlive-latex-extra, texlive-lang-chinese, latexmk, fonts-noto-cjk,
# fonts-freefont-otf, fonts-dejavu (.ci/run installs them).
pdf: $(STAMP)
	test -d _build/.doctrees || $(MAKE) book
	$(BIN)/jupyter-book build --builder pdflatex -n --keep-going .
	@# a link with no target is a dead link on paper: the last LaTeX pass must resolve every one
	@if grep -q -E "There were undefined (references|citations)" _build/latex/pgbook.log; then \
		grep -A1 -E "^LaTeX Warning: (Hyper reference|Reference|Citation)" _build/latex/pgbook.log; \
		echo "make pdf: undefined references in the PDF (above)"; exit 1; fi
	mkdir -p _build/html/_downloads && cp _build/latex/pgbook.pdf _build/html/_downloads/pgbook.pdf

# Layout work on a few chapters: `make book-part CHAPTERS="08_ppo 12_unified" OUT=/tmp/part`
# builds only those chapters (and the intro), with a notebook cache, into $(OUT)/_build/html;
# links to other chapters are left unresolved, so warnings are not errors here. Then
# `.venv/bin/python .ci/browser_check.py $(OUT)/_build/html` measures the layout.
CHAPTERS ?= 01_policies
OUT ?= _build/part
book-part: $(STAMP)
	$(BIN)/python .ci/build_part.py --out $(OUT) $(CHAPTERS)

lint: $(STAMP)
	$(BIN)/ruff check pgbook tests benchmarks mutation .ci book
	$(BIN)/ruff format --check book

# MUTANT_JOBS=2 runs two mutants at a time; MUTANT_ARGS="--only NAME ..." re-runs some of them
# (their results are merged into mutation/results.json, and the report rewritten from it)
MUTANT_JOBS ?= 1
MUTANT_ARGS ?=
mutants: $(STAMP)
	$(BIN)/python -m mutation --baseline --jobs $(MUTANT_JOBS) --results mutation/results.json \
		--report mutation/REPORT.md --update-readme $(MUTANT_ARGS)

benchmarks: $(STAMP)
	$(BIN)/python -m benchmarks all --seeds 3

clean:
	rm -rf _build .pytest_cache
