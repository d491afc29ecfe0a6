# make example : install into .venv (first time only) and render examples/custom_callbacks.py to loop.html
# make test    : install into .venv (first time only) and run the whole test suite
# make test-fast: the tests that need no framework (tests/model, tests/rendering, tests/analysis; seconds)
# make bench   : speed against the floor of each command (benchmarks/run.py; a few minutes)
# make validators: recompile loopdoc/model/_validators.py after a schema change
# make typecheck: mypy on the public modules and tests/typing/public_api.py (configured in pyproject.toml)
# make docs    : build loopdoc's own documentation (mkdocs.yml, docs/) into site/ with its own mkdocs plugin
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install example test test-fast lint typecheck golden docs bench validators

$(STAMP): pyproject.toml tests/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -c tests/constraints.txt
	touch $(STAMP)

install: $(STAMP)

example: $(STAMP)
	$(VENV)/bin/loopdoc render examples/custom_callbacks.py -o loop.html
	@echo "wrote loop.html"

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q tests/model tests/rendering tests/analysis

lint: $(STAMP)
	$(VENV)/bin/ruff check loopdoc tests examples benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

golden: $(STAMP)
	LOOPDOC_REGENERATE=1 $(PY) -m pytest -q tests/integration/test_golden.py tests/fastai/test_diff_fixtures.py
	cp tests/golden/custom_callbacks.svg docs/matrix.svg

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(PY) benchmarks/run.py

validators: $(STAMP)
	$(PY) -m loopdoc.model.codegen
