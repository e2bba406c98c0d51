# Two entry points for a fresh machine: `make report` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= smoke
DATA ?=
FERPLUS ?=
OUT ?= reports
PYTEST_ARGS ?=

.PHONY: install report lab test lint benchmarks accuracy-checks cleaning-ablation probes clean-reports

$(BIN)/fer-workbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

install: $(BIN)/fer-workbench

## Run the whole notebook sequence from scratch (embedded default unless DATA=...) and print where
## reports/index.html is; --fresh replaces what an earlier report left in OUT (review decisions are kept).
report: install
	$(BIN)/fer-workbench run --fresh --profile $(PROFILE) --out $(OUT) $(if $(DATA),--data $(DATA)) $(if $(FERPLUS),--ferplus $(FERPLUS))

## JupyterLab on notebooks/, with ./jupyter_server_config.py on its config path: saving one of the numbered
## notebooks writes it without outputs, as committed (their executed copies are in reports/).
lab: install
	JUPYTER_CONFIG_PATH="$(CURDIR)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(BIN)/jupyter lab notebooks/

## Install and run the test suite (real-data tests skip when ../shared is absent).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check fer_workbench tests benchmarks

benchmarks: install
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

## Accuracy checks of the cleaning scores: planted truth of the synthetic default, and real FER2013 / FER+ from
## ../shared when present. Each prints what it checks first. Long: up to an hour or more on a CPU with ../shared.
accuracy-checks: install
	for script in benchmarks/accuracy/check_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## Does cleaning help? (issue 19) The cpu-profile cleaning of DATA (once: its manifest is kept), then the same
## network trained on raw and on each cleaned Training set, 3 seeds each; results in reports/fer2013/. Hours on a
## CPU: run it in the background; re-running resumes (finished cells are not retrained).
ABLATION ?= runs/cleaning-ablation
$(ABLATION)/clean/manifest.csv:
	$(BIN)/fer-workbench clean --profile cpu --data $(DATA) $(if $(FERPLUS),--ferplus $(FERPLUS)) --out $(ABLATION)/clean

cleaning-ablation: install $(ABLATION)/clean/manifest.csv
	$(BIN)/fer-workbench ablate-cleaning --profile cpu --data $(DATA) $(if $(FERPLUS),--ferplus $(FERPLUS)) \
		--manifest $(ABLATION)/clean/manifest.csv --out $(ABLATION) --report reports/fer2013

## Probes of the shipped recipe (issue 15): configs/fer2013-cpu.yaml trained with each change in
## configs/fer2013-probes.yaml for the same PROBE_EPOCHS and seed, chosen on PublicTest; the table and figure go to
## reports/fer2013/probes.{json,png}. Hours on a CPU: run it in the background; re-running resumes (finished probes
## are not retrained). ONLY=a,b runs some of them.
PROBES ?= runs/probes
PROBE_EPOCHS ?= 10
ONLY ?=
probes: install
	$(if $(DATA),,$(error make probes needs DATA=fer2013.csv.gz))
	$(BIN)/fer-workbench probe --profile cpu --data $(DATA) --config configs/fer2013-cpu.yaml \
		--probes configs/fer2013-probes.yaml --epochs $(PROBE_EPOCHS) --out $(PROBES) --report reports/fer2013 \
		$(if $(ONLY),--only $(ONLY))

clean-reports:
	find $(OUT) -mindepth 1 ! -name README.md ! -path '$(OUT)/fer2013*' -exec rm -rf {} +
