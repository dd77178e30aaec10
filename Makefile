# The two commands README.md starts with: `make demo` and `make test`. Each makes its own venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= results/simple_weather
EXAMPLE := examples/simple_weather

.PHONY: demo test lint clean

$(BIN)/.installed: setup.cfg pyproject.toml mypy.ini
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## demo: compile simple_weather with the offline stand-in model, collect rollouts, print the summary
demo: $(BIN)/.installed
	$(BIN)/gym-compile $(EXAMPLE)/simple_weather.yaml $(EXAMPLE)/stand_in_model.yaml \
		+output_jsonl_fpath=$(OUT)/rollouts.jsonl -o $(OUT)/plan.json
	$(BIN)/gym-run $(OUT)/plan.json --overwrite

## test: the whole test suite (what CI runs)
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) results build dist *.egg-info
