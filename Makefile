# Two commands do everything on a fresh machine:
#   make demo   install, then route a Korean question offline through the graph
#   make test   install what the tests need, then lint, type-check and test
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# torch==2.13.0 is the CPU build; a bare `torch` would pull a multi-GB CUDA build.
BASE := torch==2.13.0 "httpx>=0.27"
QUESTION ?= 민법상 채권자대위권을 행사하기 위한 요건은 무엇인가요?

.PHONY: demo test install install-test lint notebooks fuzz

install:
	$(PIP) install $(BASE) -e .

install-test:
	$(PIP) install $(BASE) -e ".[test,train]"

demo: install
	$(PYTHON) -m langchain_domain_router route "$(QUESTION)"

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy langchain_domain_router

test: install-test lint
	$(PYTHON) -m pytest

# Hostile requests against a real server: 20,000 generated bodies, never a 500 or a reset.
fuzz:
	$(PYTHON) benchmarks/fuzz_server.py --requests 20000

notebooks: install-test
	$(PYTHON) -m jupyter execute --inplace notebooks/*.ipynb
