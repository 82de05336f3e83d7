# Entry points for dyad. CMake does the real work; this file only strings the steps together.
#
#   make deps      install missing Debian packages (CHROMIUM=0 skips the browser, TORCH=1 adds PyTorch)
#   make build     configure build/ (Release) and build everything with -j$(JOBS)
#   make test      deps + build + ctest
#   make demo      deps + build the dyad command line only + run its demo into demo-out/
#   make bench     build + run every benchmark binary in build/bench/
#   make install   build + install into $(PREFIX) (default /usr/local)
#   make test-asan build everything in build-asan/ with ASan + UBSan and run ctest there
#   make test-tsan build the tests and CLI in build-tsan/ with TSan and run the threaded ones
#   make fuzz      build the libFuzzer targets (clang) in build-fuzz/, run each SECONDS=N s (60)
#   make format    apply .clang-format to the C++ sources; make check-format: say which differ (CI)
#   make clean     remove build/, demo-out/ and the three checking build directories
#
# Variables: BUILD_DIR, BUILD_TYPE, JOBS, PREFIX, CMAKE_ARGS (extra configure flags),
# CTEST_ARGS (extra ctest flags), BENCH_ARGS (passed to every benchmark binary),
# ASAN_DIR, TSAN_DIR, FUZZ_DIR, SECONDS (fuzzing time per target), FUZZ_TARGETS, FUZZ_CXX,
# SAN_OPT (the sanitizer builds' optimisation flags, -O1 -DNDEBUG).

BUILD_DIR  ?= build
BUILD_TYPE ?= Release
JOBS       ?= 2
PREFIX     ?= /usr/local
CHROMIUM   ?= 1
TORCH      ?= 0
DEMO_OUT   ?= demo-out
CMAKE_ARGS ?=
CTEST_ARGS ?=
BENCH_ARGS ?=
ASAN_DIR   ?= build-asan
TSAN_DIR   ?= build-tsan
FUZZ_DIR   ?= build-fuzz
SECONDS    ?= 60
FUZZ_CXX   ?= clang++-14
FUZZ_TARGETS ?= csv scores_csv safetensors checkpoint params_json training_state ingest segment_store segment_stream spec fleet_db

DEPS_FLAGS = $(if $(filter 1,$(CHROMIUM)),--chromium,--no-chromium) \
             $(if $(filter 1,$(TORCH)),--torch,--no-torch)

# Quieter output: no "Entering directory" lines from the make that cmake --build runs.
MAKEFLAGS += --no-print-directory

# Prerequisites are steps in order (deps, then build), never parallel jobs of make itself.
.NOTPARALLEL:
.DEFAULT_GOAL := build
.PHONY: deps deps-core deps-fuzz configure build test demo bench install clean test-asan test-tsan fuzz format check-format

deps:
	bash scripts/install-deps.sh $(DEPS_FLAGS)

# The demo does not need the browser.
deps-core:
	bash scripts/install-deps.sh --no-chromium $(if $(filter 1,$(TORCH)),--torch,--no-torch)

deps-fuzz:
	bash scripts/install-deps.sh --no-chromium --no-torch --fuzz

# MPI is required here: the tests run mpirun (tests/cli/mpi.sh), and must not skip unnoticed.
configure:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DDYAD_REQUIRE_MPI=ON $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Tests run $(JOBS) at a time (ctest gives the two-core ones both cores).
test: deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# The demo needs the command line only: no tests, no benchmarks.
demo: deps-core configure
	cmake --build $(BUILD_DIR) -j$(JOBS) --target dyad_cli
	$(BUILD_DIR)/dyad demo --out $(DEMO_OUT)

bench: build
	@set -e; found=0; \
	for b in $$(find $(BUILD_DIR)/bench -maxdepth 1 -type f -perm -u+x 2>/dev/null | sort); do \
	  found=1; echo "== $$b"; "$$b" $(BENCH_ARGS); \
	done; \
	if [ $$found = 0 ]; then echo "make bench: no benchmark binaries in $(BUILD_DIR)/bench" >&2; exit 1; fi

install: build
	cmake --install $(BUILD_DIR) --prefix "$(PREFIX)"

format:
	bash scripts/check-format.sh --fix

check-format:
	bash scripts/check-format.sh

clean:
	rm -rf $(BUILD_DIR) $(DEMO_OUT) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR)

# ---- Checking builds ------------------------------------------------------------------------
# Sanitizer runtime settings: the first report fails the run, with a stack trace.
SAN_ENV = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
          TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# The whole ctest suite under ASan + UBSan (float-cast-overflow is not part of GCC's
# "undefined"). Built without MPI: Open MPI's own allocations would fail LeakSanitizer; the
# data-parallel code runs here over in-process ranks (tests/test_data_parallel.cpp). Left out: the header self-containment and installed-package tests, which
# compile code but run none of it (make test covers them). test_allocation.cpp interposes
# malloc and skips itself under ASan. -O1, as ASan's authors advise: at -O3 the instrumented
# Eigen code takes 2.4x longer to compile (8 minutes for test_model.cpp alone), which CI's time
# cannot hold; the gradient checks sample their scalars here (tests/gradcheck.hpp), and the
# interrupt-and-resume script trains 8 epochs, not 40 (tests/cli/resume.sh).
SAN_OPT ?= -O1 -DNDEBUG
test-asan: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=$(SAN_OPT)" -DDYAD_SANITIZE=address,undefined,float-cast-overflow -DDYAD_MPI=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_DIR) -j$(JOBS)
	@echo "test-asan: tests/test_allocation.cpp is skipped here (it interposes malloc, which ASan owns)"
	$(SAN_ENV) DYAD_RESUME_EPOCHS=8 ctest --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS) -E '^(headers_self_contained|package_downstream)$$' $(CTEST_ARGS)

# The tests that run on two threads, under TSan: every test case with "thread" in its name,
# fit's two-thread determinism check, the data-parallel ranks (threads of one process), then the CLI trains and scores with --threads 2.
# Left out: the finite-difference checks of the recurrent cells (thousands of tapes: over 20
# minutes under TSan); fit and the CLI run the same two-thread forward and backward passes, the
# CLI for the GRU, the RNN and the LSTM. Built at $(SAN_OPT), as test-asan is.
TSAN_TESTS ?= *thread*,fit: one-class training*,data parallel*
TSAN_EXCLUDE ?= GRU / RNN / LSTM *
test-tsan: deps-core
	cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=$(SAN_OPT)" -DDYAD_SANITIZE=thread -DDYAD_MPI=OFF $(CMAKE_ARGS)
	cmake --build $(TSAN_DIR) -j$(JOBS) --target dyad_tests dyad_cli
	$(SAN_ENV) $(TSAN_DIR)/tests/dyad_tests --no-intro --test-case='$(TSAN_TESTS)' --test-case-exclude='$(TSAN_EXCLUDE)' --duration=true
	@set -e; dyad=$(TSAN_DIR)/dyad; w=$(TSAN_DIR)/cli-threads; rm -rf $$w; mkdir -p $$w; \
	echo "test-tsan: dyad simulate, train --threads 2, score --threads 2"; \
	$(SAN_ENV) $$dyad simulate --cars 6 --faulty 2 --segments 4 --steps 24 --seed 9 --out $$w/fleet.csv; \
	$(SAN_ENV) $$dyad train --data $$w/fleet.csv --out $$w/model.safetensors --epochs 2 --batch-size 4 --threads 2 -q; \
	$(SAN_ENV) $$dyad score --model $$w/model.safetensors --data $$w/fleet.csv --out $$w/scores.csv --threads 2 --batch-size 4; \
	test "$$(wc -l < $$w/scores.csv)" -eq 25 || { echo "test-tsan: scores.csv should have 24 rows" >&2; exit 1; }; \
	for cell in rnn lstm; do \
	  echo "test-tsan: dyad train --rnn-type $$cell --threads 2, score --threads 2"; \
	  $(SAN_ENV) $$dyad train --data $$w/fleet.csv --out $$w/$$cell.safetensors --rnn-type $$cell --epochs 1 --batch-size 4 --threads 2 -q; \
	  $(SAN_ENV) $$dyad score --model $$w/$$cell.safetensors --data $$w/fleet.csv --out $$w/$$cell.csv --threads 2 --batch-size 4; \
	done; \
	echo "test-tsan: passed"

# libFuzzer targets (tests/fuzz) built with clang, ASan and UBSan; each runs $(SECONDS) s on a
# scratch copy of its corpus (tests/fuzz/run.sh prints executions per second and in total).
fuzz: deps-fuzz
	cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	      -DDYAD_SANITIZE=address,undefined -DDYAD_FUZZ=ON $(CMAKE_ARGS)
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	bash tests/fuzz/run.sh $(FUZZ_DIR) $(SECONDS) $(FUZZ_TARGETS)
