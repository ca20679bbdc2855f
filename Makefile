# cde: CoDE trainer. `make run` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
SWIFT ?= swift
NP ?= 2
RUN ?= runs/smoke
DATA ?= runs/synth-d3
BIN := .build/release/cde
DEBS := pkg-config libopenblas-dev libopenmpi-dev openmpi-bin libvips-dev liblinear-dev libsvm-dev libssl-dev \
  libdnnl-dev qemu-user iproute2 util-linux python3-venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Open MPI refuses to run as root unless told; CI and these machines run as root.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1

.PHONY: deps build test run bench clean

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The numeric code targets a portable baseline (x86-64-v3: AVX2 + FMA), so one binary
# runs on every node of a cluster; `make build NATIVE=1` compiles it for this machine's
# CPU instead (Package.swift reads CDE_NATIVE). The choice holds for one make command:
# `make test` always builds and tests the portable binary.
NATIVE ?= 0
export CDE_NATIVE := $(NATIVE)

build: deps
	$(SWIFT) build -c release --product cde

# Unit tests (release build: the numeric tests run full-size models), then the
# multi-process tests under mpirun, the portable binary under qemu-user (Haswell runs,
# Sandy Bridge gets one line), a two-host run over network namespaces (as root), and
# training, embedding and ViT-Tiny steps under ThreadSanitizer and AddressSanitizer, and the
# unit tests under AddressSanitizer (two more builds, in .build/tsan and .build/asan).
test: export CDE_NATIVE := 0
test: deps
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	$(SWIFT) test -c release -Xswiftc -enable-testing --skip-build
	bash scripts/test-mpi.sh $(BIN)
	bash scripts/test-cli.sh $(BIN)
	bash scripts/test-train.sh $(BIN)
	bash scripts/test-ops.sh $(BIN)
	bash scripts/test-baddata.sh $(BIN)
	bash scripts/test-portable.sh $(BIN)
	bash scripts/test-hosts.sh $(BIN)
	bash scripts/test-import.sh $(BIN)
	bash scripts/test-bench.sh $(BIN)
	SWIFT="$(SWIFT)" bash scripts/test-sanitizers.sh $(BIN)

# The README's main command: synthetic D3 (train shards, probe and test folders),
# configs/smoke.yaml under mpirun -np $(NP), evaluation and an HTML report.
# SYNTH_STRENGTH scales the synthetic real-vs-generated cues, SYNTH_SCENE says what a record's
# images share (layout: the generated images re-render the real scene), SYNTH_SEED picks the
# data set (train SEED, probe SEED+1000, test SEED+1001); see docs/synthetic-d3.md and
# docs/learnability.md ("A smoke run that learns").
SYNTH_RECORDS ?= 256
SYNTH_STRENGTH ?= 7
SYNTH_SCENE ?= layout
SYNTH_SEED ?= 1
SYNTH = $(BIN) shards synth --strength $(SYNTH_STRENGTH) --scene $(SYNTH_SCENE)
run: build
	@if [ ! -d $(DATA)/train ]; then \
	  $(SYNTH) --out $(DATA)/train --records $(SYNTH_RECORDS) --shard-size 64 --seed $(SYNTH_SEED); fi
	@if [ ! -d $(DATA)/probe/real ]; then \
	  $(SYNTH) --layout folders --records 100 --seed $$(( $(SYNTH_SEED) + 1000 )) --out $(DATA)/probe; fi
	@if [ ! -d $(DATA)/test/real ]; then \
	  $(SYNTH) --layout folders --records 60 --seed $$(( $(SYNTH_SEED) + 1001 )) --out $(DATA)/test; fi
	CDE=$(BIN) bash cluster/cde-mpirun.sh -n $(NP) -- train --config configs/smoke.yaml \
	  --set 'data.train=[$(DATA)/train]' --set 'eval.probe=[$(DATA)/probe]' --set 'eval.test=[$(DATA)/test]' \
	  --out $(RUN) --resume auto
	BIN=$(BIN) STRENGTH=$(SYNTH_STRENGTH) SCENE=$(SYNTH_SCENE) PROBE_RECORDS=100 TEST_RECORDS=60 PREPROCESS=resize-crop \
	  bash scripts/eval-smoke.sh $(RUN) $(DATA)
	@echo "run: $(RUN) (checkpoints in $(RUN)/checkpoints, metrics in $(RUN)/metrics.jsonl, report $(RUN)/report.html)"

bench: build
	bash scripts/bench.sh $(BIN)

clean:
	rm -rf .build runs
