# Thin wrapper: the README's quick start is `make demo` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh, idempotent),
# then configure and build Release into build/.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
# PCH-compiled units are only cacheable by ccache with these sloppiness flags.
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime

.PHONY: all deps configure build test demo personalize bench clean help

all: build

help:
	@echo "make demo   install deps, build, run the end-to-end demo"
	@echo "make test   install deps, build, run every test (ctest)"
	@echo "make personalize  after make demo: fine-tune the demo model on a second identity"
	@echo "make bench  build and run the benchmarks in bench/"
	@echo "make clean  remove $(BUILD_DIR)/"

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) > $(BUILD_DIR).configure.log 2>&1 \
	  || (cat $(BUILD_DIR).configure.log; exit 1)
	@rm -f $(BUILD_DIR).configure.log

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Tests run $(JOBS) at a time, each with its share of the cores (HALLO_THREADS = cores /
# JOBS, at least 1). More threads than cores starve each other: spinning idle OpenMP
# threads (libgomp's default) took an animate beside a training run from 11.5 s to 212 s;
# sleeping ones (PASSIVE, still set for tests that pick their own count) pay a wake-up per
# parallel region. Measured on 2 cores under ctest -j2 (bench/RESULTS.md, "CI time"):
# unchanged train.cli runs with 1 thread instead of 2, a LoRA fine-tune 63 -> 44 s, its
# animates 16 -> 10 s each; the VAE fit went 15 -> 21 s.
TEST_THREADS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); t=$$((n / $(JOBS))); echo $$((t > 0 ? t : 1)))
test: build
	@cd $(BUILD_DIR) && HALLO_THREADS=$${HALLO_THREADS:-$(TEST_THREADS)} OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} \
	  ctest --output-on-failure -j $(JOBS)

demo: build
	@bash recipes/demo.sh $(BUILD_DIR)

personalize: build
	@bash recipes/personalize.sh $(BUILD_DIR)

bench: build
	@bash bench/run.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
