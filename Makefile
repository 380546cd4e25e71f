# Vigil — the two set-up commands are `make demo` and `make test`.
# Every target installs what it needs on a fresh Debian/Ubuntu machine.

CARGO ?= cargo
FUZZ_RUNS ?= 1000000

.PHONY: all build release demo test test-deps toolchain lint fuzz fuzz-deps bench memtest clean

all: build

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# Records the built-in simulated camera (no setup, no camera needed).
demo: release
	./target/release/vigil demo

# Rust components the checks need (rustfmt, clippy); quick when present.
toolchain:
	@command -v rustup >/dev/null 2>&1 || { echo "make: rustup is needed (https://rustup.rs)"; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

# System packages of the real-peer tests (GStreamer RTSP server, ffmpeg).
test-deps:
	bash scripts/install-test-deps.sh

lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Every test, including those against GStreamer and ffmpeg.
test: toolchain test-deps lint
	$(CARGO) test -- --include-ignored

# Vigil against one ffmpeg segmenter per camera, the scale run, serving
# and the callgrind instruction count (see bench/run.py); about 12 min,
# `make bench QUICK=1` about 2-3 min. Results: target/bench/results.md.
# STRICT=1 fails when a target (CPU, memory, frames lost) is missed.
bench:
	sh bench/deps.sh
	$(CARGO) build --release
	CARGO_PROFILE_BENCH_STRIP=false $(CARGO) bench --no-run --quiet \
		--bench playback --bench viewers --bench recordings_list --bench ingest_replay
	CARGO="$(CARGO)" python3 bench/run.py $(if $(QUICK),--quick)

# The memory harness (memtest/README.md): budgets of idle, load, a 10-minute
# soak and a 32 MiB hard cap, on a static release build (as the boards
# run); about 14 minutes. QUICK=1 shortens the soak to 1 minute. Not part
# of `make test`.
memtest:
	QUICK=$(QUICK) bash memtest/memtest.sh

fuzz-deps:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

# Runs every fuzz target for FUZZ_RUNS iterations (not part of `make test`).
# The bundled SQLite, linked into every target, trips AddressSanitizer's
# one-definition-rule check on a global of its own (a false positive of
# linking that C library twice instrumented); the check is turned off.
fuzz: fuzz-deps
	cd fuzz && for t in $$(RUSTC_BOOTSTRAP=1 cargo fuzz list); do \
		echo "== $$t"; \
		ASAN_OPTIONS=detect_odr_violation=0 RUSTC_BOOTSTRAP=1 \
			cargo fuzz run $$t -- -runs=$(FUZZ_RUNS) -max_len=4096 || exit 1; \
	done

clean:
	$(CARGO) clean
