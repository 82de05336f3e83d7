# Entry points for dyad. CMake does the real work; this file only strings the steps together.
#
#   make deps      install missing Debian packages (CHROMIUM=0 skips the browser, TORCH=1 adds PyTorch)
#   make build     configure build/ (Release) and build everything with -j$(JOBS)
#   make test      deps + build + ctest
#   make demo      deps + build + run the dyad CLI demo into demo-out/
#   make bench     build + run every benchmark binary in build/bench/
#   make install   build + install into $(PREFIX) (default /usr/local)
#   make clean     remove build/ and demo-out/
#
# Variables: BUILD_DIR, BUILD_TYPE, JOBS, PREFIX, CMAKE_ARGS (extra configure flags),
# CTEST_ARGS (extra ctest flags), BENCH_ARGS (passed to every benchmark binary).

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

DEPS_FLAGS = $(if $(filter 1,$(CHROMIUM)),--chromium,--no-chromium) \
             $(if $(filter 1,$(TORCH)),--torch,--no-torch)

# Quieter output: no "Entering directory" lines from the make that cmake --build runs.
MAKEFLAGS += --no-print-directory

# Prerequisites are steps in order (deps, then build), never parallel jobs of make itself.
.NOTPARALLEL:
.DEFAULT_GOAL := build
.PHONY: deps deps-core configure build test demo bench install clean

deps:
	bash scripts/install-deps.sh $(DEPS_FLAGS)

# The demo does not need the browser.
deps-core:
	bash scripts/install-deps.sh --no-chromium $(if $(filter 1,$(TORCH)),--torch,--no-torch)

configure:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

test: deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure $(CTEST_ARGS)

demo: deps-core build
	$(BUILD_DIR)/examples/dyad demo --out $(DEMO_OUT)

bench: build
	@set -e; found=0; \
	for b in $$(find $(BUILD_DIR)/bench -maxdepth 1 -type f -perm -u+x 2>/dev/null | sort); do \
	  found=1; echo "== $$b"; "$$b" $(BENCH_ARGS); \
	done; \
	if [ $$found = 0 ]; then echo "make bench: no benchmark binaries in $(BUILD_DIR)/bench" >&2; exit 1; fi

install: build
	cmake --install $(BUILD_DIR) --prefix "$(PREFIX)"

clean:
	rm -rf $(BUILD_DIR) $(DEMO_OUT)
