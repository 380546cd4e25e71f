# Vigil — the two set-up commands are `make demo` and `make test`.
# Every target installs what it needs on a fresh Debian/Ubuntu machine.

CARGO ?= cargo
FUZZ_RUNS ?= 1000000

.PHONY: all build release demo test test-deps toolchain lint fuzz fuzz-deps bench memtest clean \
	cross-armv7 cross-mipsel cross-armv7-gnu test-cross

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

# Every test, including those against GStreamer and ffmpeg, then the
# cross-built targets under qemu-user.
test: toolchain test-deps lint
	$(CARGO) test -- --include-ignored
	$(MAKE) test-cross

# Static, stripped binaries for the boards (musl; Docker-free, see
# cross/README.md): target/<triple>/embedded/vigil.
cross-armv7:
	sh scripts/cross.sh build armv7

cross-mipsel:
	sh scripts/cross.sh build mipsel

# The same, statically linked against glibc instead (an extra; for mipsel
# this does not link yet, see scripts/cross.sh).
cross-armv7-gnu:
	sh scripts/cross.sh build armv7-gnu

# The lib unit tests of both musl targets under qemu-user, and the mipsel
# binary recording the built-in camera, exported and checked by ffmpeg.
test-cross: test-deps
	sh scripts/cross.sh test armv7
	sh scripts/cross.sh test mipsel
	sh scripts/cross.sh build mipsel
	sh cross/smoke.sh target/mipsel-unknown-linux-musl/embedded/vigil qemu-mipsel-static 10

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
