# Two commands do everything on a fresh machine:
#   make demo   install, then route a Korean question offline through the graph
#   make test   install what the tests need, then lint, type-check and test
#   make serve  install the server's extra, then serve on 127.0.0.1:8000 (CONFIG=router.yaml)
#   make docs   build the documentation site into site/ (mkdocs --strict: a warning fails it)
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# torch comes from the PyTorch CPU index, for torch only (as in the Dockerfile): PyPI's
# Linux torch wheel is a CUDA build that pulls several GB of nvidia-* packages. Where that
# index cannot be reached (one quick try), the pinned wheel comes from the usual index.
TORCH := torch==2.13.0
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
BASE := "httpx>=0.27"
QUESTION ?= 민법상 채권자대위권을 행사하기 위한 요건은 무엇인가요?

.PHONY: demo test serve install install-test install-torch check-cpu lint docs notebooks fuzz postgres

install-torch:
	$(PIP) install --index-url $(TORCH_INDEX_URL) --timeout 10 --retries 0 "$(TORCH)" \
	|| { echo "PyTorch CPU index not reachable: $(TORCH) from the default index" >&2; \
	     $(PIP) install "$(TORCH)"; }

install: install-torch
	$(PIP) install $(BASE) -e .

install-test: install-torch
	$(PIP) install $(BASE) -e ".[test,train]"

check-cpu:
	$(PYTHON) .ci/check_cpu_only.py

demo: install
	$(PYTHON) -m langchain_domain_router route "$(QUESTION)"

serve: install-torch
	$(PIP) install $(BASE) -e ".[serve]"
	$(PYTHON) -m langchain_domain_router serve $(if $(CONFIG),--config "$(CONFIG)")

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy langchain_domain_router

# The API reference is read from the docstrings of the source tree (not an installed copy).
docs:
	$(PYTHON) -m mkdocs build --strict

test: install-test lint docs
	$(PYTHON) -m pytest

# A local PostgreSQL on 127.0.0.1 for the thread and multi-replica tests (what CI starts):
#   eval "$$(make -s postgres)"   then   make test
postgres:
	@.ci/postgres.sh

# Hostile requests against a real server: 20,000 generated bodies, never a 500 or a reset.
fuzz:
	$(PYTHON) benchmarks/fuzz_server.py --requests 20000

notebooks: install-test
	$(PYTHON) -m jupyter execute --inplace notebooks/*.ipynb
