# Set-up is part of every target: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
EXPERIMENT ?= experiments/spectral.yaml
BENCH ?=
STAMP := .make/installed

.PHONY: run test test-fast bench install clean

$(STAMP): pyproject.toml scripts/install.sh device_runners/rp2040js/package-lock.json
	PYTHON=$(PYTHON) bash scripts/install.sh
	@mkdir -p .make && touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PYTHON) -m autotune run $(EXPERIMENT)

test: $(STAMP)
	$(PYTHON) -m pytest -q --durations=15

test-fast: $(STAMP)
	$(PYTHON) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PYTHON) benchmarks/run.py $(BENCH)

clean:
	rm -rf .make build runs .pytest_cache
