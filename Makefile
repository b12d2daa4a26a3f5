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

# Two pytest workers (a file each at a time), then the timing-sensitive tests alone; both always run.
test: $(STAMP)
	status=0; \
	$(PYTHON) -m pytest -q -n 2 --dist loadfile -m "not serial" --durations=15 || status=1; \
	$(PYTHON) -m pytest -q -m serial --durations=5 || status=1; \
	exit $$status

test-fast: $(STAMP)
	$(PYTHON) -m pytest -q -n 2 --dist loadfile -m "not slow and not serial"

bench: $(STAMP)
	$(PYTHON) benchmarks/run.py $(BENCH)

clean:
	rm -rf .make build runs .pytest_cache
