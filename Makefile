# xlcat: two commands for a fresh machine.
#   make demo   simulate the NGC 5506 observations, build the catalogue, query and plot it,
#               plot the lag-energy spectrum of the 8lch scheme, then lag-energy in the
#               study's four frequency ranges and a lag-frequency spectrum
#   make test   run the test suite
#   make typecheck   run mypy with the configuration in pyproject.toml
#   make bench  the NGC 5506 preset build against its numpy and stingray anchors
#               (BENCH_SCALE ?= 4); make bench-archive: BENCH_EXPOSURES small exposures
# Each creates the virtual environment .venv on first use (Python >= 3.11 as $(PYTHON)).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= demo
BENCH_SCALE     ?= 4
BENCH_EXPOSURES ?= 1000
BENCH_OUT       ?= bench-results

.PHONY: demo test typecheck bench bench-archive clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/xlcat simulate $(DEMO) --preset ngc5506
	$(BIN)/xlcat build $(DEMO)/ngc5506.toml
	$(BIN)/xlcat ls $(DEMO)/ngc5506.zarr --scheme 8lch
	$(BIN)/xlcat query $(DEMO)/ngc5506.zarr --obsid 0761220101 --scheme 8lch --energy 2-4 -o $(DEMO)/0761220101_8lch_2-4keV.csv
	head -n 4 $(DEMO)/0761220101_8lch_2-4keV.csv
	$(BIN)/xlcat plot $(DEMO)/ngc5506.zarr --obsid 0761220101 --scheme 4a -o $(DEMO)/0761220101_4a.png
	$(BIN)/xlcat lags $(DEMO)/ngc5506.zarr --scheme 8lch --freq 1e-4 5e-4 --expected -o $(DEMO)/lags_8lch.nc --plot $(DEMO)/lags_8lch.png --save lags_8lch --overwrite
	$(BIN)/xlcat lags $(DEMO)/ngc5506.zarr --scheme 8lch --min-length 109b --freq 8e-6 1e-4 2.6e-4 5e-4 8e-4 --panels lag,coherence,covariance --expected -o $(DEMO)/lags_8lch_ranges.nc --plot $(DEMO)/lags_8lch_ranges.png --save lags_8lch_ranges --overwrite
	$(BIN)/xlcat lagfreq $(DEMO)/ngc5506.zarr --scheme 8lch --min-length 109b --subject 5.47-10 --reference 2-3 -o $(DEMO)/lagfreq_8lch.nc --plot $(DEMO)/lagfreq_8lch.png

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

typecheck: $(VENV)/.installed
	$(BIN)/mypy --config-file pyproject.toml

bench: $(VENV)/.installed
	mkdir -p $(BENCH_OUT)
	$(BIN)/python -m bench.bench_build --scale $(BENCH_SCALE) --json $(BENCH_OUT)/build-scale$(BENCH_SCALE).json

bench-archive: $(VENV)/.installed
	mkdir -p $(BENCH_OUT)
	$(BIN)/python -m bench.bench_archive --n-exposures $(BENCH_EXPOSURES) --json $(BENCH_OUT)/archive-$(BENCH_EXPOSURES).json

clean:
	rm -rf $(DEMO) $(BENCH_OUT) .pytest_cache
