# The two commands README.md starts with: `make demo` and `make test`. Each makes its own venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= results/simple_weather
EXAMPLE := examples/simple_weather
WHEELS ?= $(HOME)/.cache/gym-compile/wheels
RAY_REQ := ray>=2.10# as in setup.cfg's [ray] extra

.PHONY: demo test lint clean

$(BIN)/.installed: setup.cfg pyproject.toml mypy.ini
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Ray for the --ray tests only (make demo does not need it)
$(BIN)/.ray: $(BIN)/.installed
	@# Ray (the [ray] extra, ~290 MB) for the --ray tests. pip keeps no cache of it here, so its
	@# wheels are kept in $(WHEELS): downloaded once (~30 s), installed offline after that (~10 s).
	@# Where Ray cannot be installed, those tests skip and say why.
	$(BIN)/python -m pip install --quiet --no-index --find-links $(WHEELS) '$(RAY_REQ)' 2>/dev/null \
	  || { $(BIN)/python -m pip download --quiet --dest $(WHEELS) '$(RAY_REQ)' \
	       && $(BIN)/python -m pip install --quiet --no-index --find-links $(WHEELS) '$(RAY_REQ)'; } \
	  || echo "make: Ray could not be installed; the --ray tests will skip"
	touch $@

## demo: compile simple_weather with the offline stand-in model, collect rollouts, print the summary
demo: $(BIN)/.installed
	$(BIN)/gym-compile $(EXAMPLE)/simple_weather.yaml $(EXAMPLE)/stand_in_model.yaml \
		+output_jsonl_fpath=$(OUT)/rollouts.jsonl -o $(OUT)/plan.json
	$(BIN)/gym-run $(OUT)/plan.json --overwrite

## test: the whole test suite (what CI runs)
test: $(BIN)/.installed $(BIN)/.ray
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
