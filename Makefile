# flowevo: one command to set up and run the main job, one to set up and run the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/demo

.PHONY: setup demo test bench clean browser lock

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch first (on this machine's disk); an unpinned torch would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0

# constraints.txt: the environment of the latest committed benchmark runs (pinned on Python 3.11 and Linux; elsewhere pip
# resolves pyproject's ranges freely). `make lock` rewrites it from this venv.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e ".[all,dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/flowevo demo digits --run-dir $(RUN_DIR)

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# every benchmark (crystals when the Perov-5 CSV is there): benchmarks/results/all/{metrics.json,tables.md,<part>/}
PEROV ?= ../shared/data/perov_5/val.csv
bench: setup
	$(BIN)/flowevo benchmark all --out benchmarks/results/all --seed 0 $(if $(wildcard $(PEROV)),--data $(PEROV))

# Headless Chromium for the report's browser test (Debian package); the test skips, with its reason, without it.
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "browser: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			&& echo "browser: installed chromium") || echo "browser: could not install chromium; the browser test will be skipped"; \
	else echo "browser: no chromium and no root apt-get; the browser test will be skipped"; fi

# the pins carry a marker for the Python and platform of this venv: elsewhere pip resolves pyproject's ranges
lock: $(BIN)/python
	$(BIN)/pip freeze --exclude-editable | grep -v -i '^torch==' | $(BIN)/python -c 'import sys; \
	marker = "python_version == \"%d.%d\" and sys_platform == \"%s\"" % (*sys.version_info[:2], sys.platform); \
	print("# Versions of a working environment: make setup installs with these (make lock rewrites this file)."); \
	print("# Pinned on the Python and platform they were made on only; torch is installed first, by version."); \
	print("".join(f"{line.rstrip()} ; {marker}\n" for line in sys.stdin), end="")' > constraints.txt

clean:
	rm -rf $(VENV) runs
