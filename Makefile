# Two commands set everything up on a fresh machine:
#   make run    virtual environment, install, build the index, start the web app
#   make test   install the test tools too, then lint, type-check and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.test-installed

.DEFAULT_GOAL := run
.PHONY: run chat test lint typecheck pytest eval-gate index install llm train calibrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned: a bare requirement would pull a multi-GB CUDA build.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(INSTALLED)

# The optional generative-answer extra. llama.cpp is compiled from source here, for any x86-64
# CPU with AVX2 (2013 on): never for the building CPU alone, whose AVX-512 or AMX code crashes
# elsewhere. --no-cache-dir: a wheel cached from an earlier native build must not be reused.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF \
	-DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
	-DGGML_AMX_BF16=OFF
LLM_INSTALLED := $(VENV)/.llm-installed

$(LLM_INSTALLED): $(INSTALLED)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet --no-cache-dir --force-reinstall \
		--no-deps "llama-cpp-python==0.3.36"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet --no-cache-dir -e '.[llm]'
	touch $@

llm: $(LLM_INSTALLED)

# Refit the short-answer reader (assistant/models/answer_reader.onnx) from the SQuAD 2.0
# training articles, and the answer model (assistant/models/answer_model.json) from them and the
# gold dev split, each with its article-level cross-validation; CPU only, under an hour.
# Not part of `make test`, which checks that the shipped models load and score.
train: $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[train]'
	$(BIN)/python -m evals.train_reader
	$(BIN)/python -m evals.train_answer_model
	$(BIN)/python -m evals.calibrate_strength

# Refit the map from the answer model's probability to an answer's strength
# (assistant/models/strength.json) on the gold dev split and the SQuAD subset; CPU only,
# minutes. `make train` runs it too: a map belongs to one answer model.
calibrate: $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[train]'
	$(BIN)/python -m evals.calibrate_strength

index: $(INSTALLED)
	$(BIN)/assistant index

run: index
	$(BIN)/assistant serve

chat: index
	$(BIN)/assistant chat

lint: $(TEST_INSTALLED)
	$(BIN)/ruff check assistant ui evals tests
	$(BIN)/ruff format --check assistant ui evals tests

typecheck: $(TEST_INSTALLED)
	$(BIN)/mypy

pytest: $(TEST_INSTALLED)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treating as a failure" >&2; exit 1; fi; \
	exit $$rc

# Quality gate on the held-out test split only (evals/data/README.md): thresholds sit just below
# what the assistant reaches on it (see the latest report in evals/runs), so a regression fails
# the build. Nothing is tuned to pass them.
EVAL_GATES := --fail-under hit_at_1=0.74 --fail-under hit_at_5=0.84 --fail-under mrr=0.80 \
	--fail-under ndcg_at_10=0.82 --fail-under citation_recall=0.60 \
	--fail-under citation_precision=0.57 --fail-under support_rate=0.98 \
	--fail-under answer_f1=0.16 --fail-under correct_refusal=0.48 --fail-over over_refusal=0.13

eval-gate: $(INSTALLED)
	@out=$$(mktemp -d); $(BIN)/assistant eval --split test --no-baseline --no-compare --out "$$out" $(EVAL_GATES); \
	rc=$$?; rm -rf "$$out"; exit $$rc

test: lint typecheck pytest eval-gate

clean:
	rm -rf $(VENV) index/gen-* index/CURRENT index/.lock index/servers
