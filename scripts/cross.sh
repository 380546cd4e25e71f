#!/bin/sh
# Docker-free static cross builds of Vigil for the embedded targets, and
# their tests under qemu-user. The Makefile's cross-armv7, cross-mipsel and
# test-cross targets call this; cross/README.md explains the choices.
#
#   scripts/cross.sh build ARCH [cargo args]   static stripped release binary
#   scripts/cross.sh test ARCH [cargo args]    lib unit tests under qemu-user
#   scripts/cross.sh cargo ARCH CARGO-ARGS     any cargo command, env set up
#   scripts/cross.sh deps ARCH                 only install/prepare
#
# ARCH: armv7 | mipsel (musl, the default and what ships) or armv7-gnu
# (static glibc, offered as an extra). mipsel-gnu does not link yet: the
# libc crate asks for tcgetattr@GLIBC_2.0 (a versioned symbol, which only a
# dynamic link resolves).
#
# On a fresh Debian 12 machine it installs what is missing: the cross
# gcc/g++ (used as C/C++ compiler for SQLite and OpenH264, and as linker),
# qemu-user-static, rust-src (std is built from source: rustup has no musl
# std for these two), and musl for the target. Debian has musl for armhf and
# mipsel only as foreign-architecture packages; they are downloaded with a
# private apt state under target/cross/ (no `dpkg --add-architecture`, which
# once broke `apt-get update` here) and unpacked into a sysroot there.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CROSS_DIR="$ROOT/target/cross"
JOBS=${CROSS_JOBS:-2}

say() { printf 'cross: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ $# -ge 2 ] || die "usage: $0 build|test|cargo|deps ARCH [args]"
CMD=$1
ARCH=$2
shift 2

case $ARCH in
armv7)
    TRIPLE=armv7-unknown-linux-musleabihf; GNU=arm-linux-gnueabihf
    DEBARCH=armhf; MUSL=arm-linux-musleabihf; QEMU=qemu-arm-static; LIBC=musl ;;
mipsel)
    TRIPLE=mipsel-unknown-linux-musl; GNU=mipsel-linux-gnu
    DEBARCH=mipsel; MUSL=mipsel-linux-musl; QEMU=qemu-mipsel-static; LIBC=musl ;;
armv7-gnu)
    TRIPLE=armv7-unknown-linux-gnueabihf; GNU=arm-linux-gnueabihf
    DEBARCH=armhf; QEMU=qemu-arm-static; LIBC=gnu ;;
mipsel-gnu)
    TRIPLE=mipsel-unknown-linux-gnu; GNU=mipsel-linux-gnu
    DEBARCH=mipsel; QEMU=qemu-mipsel-static; LIBC=gnu ;;
*) die "unknown ARCH '$ARCH' (armv7, mipsel, armv7-gnu, mipsel-gnu)" ;;
esac

# ---- packages --------------------------------------------------------------

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
    missing=
    for p in gcc-$GNU g++-$GNU libc6-dev-$DEBARCH-cross qemu-user-static binutils-$GNU; do
        installed "$p" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "needs Debian/Ubuntu (apt-get) for:$missing"
    [ "$(id -u)" = 0 ] || die "run as root once to install:$missing"
    say "apt-get install (cross compilers and qemu for the board targets):$missing"
    apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}

install_rust_src() {
    rustup component list --installed 2>/dev/null | grep -q '^rust-src' && return 0
    say "rustup component add rust-src (std is built from source for the board targets)"
    rustup component add rust-src
}

# The musl C library for the target, from Debian's own package, unpacked
# into target/cross/sysroot-ARCH/{lib,include}.
musl_sysroot() {
    SYSROOT="$CROSS_DIR/sysroot-$DEBARCH"
    [ -f "$SYSROOT/lib/libc.a" ] && return 0
    apt_dir="$CROSS_DIR/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$apt_dir/debs"
    # Only the release the machine runs (bookworm on Debian 12), main.
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    cat >"$apt_dir/parts/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    set -- -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" \
        -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt_dir/parts" \
        -o APT::Architectures::="$DEBARCH" -o Acquire::Languages=none \
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false \
        -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false \
        -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false \
        -o Debug::NoLocking=1
    say "fetching musl-dev:$DEBARCH (private apt state in $apt_dir)"
    apt-get "$@" update -qq
    (cd "$apt_dir/debs" && apt-get "$@" download "musl-dev:$DEBARCH" 2>/dev/null)
    rm -rf "$SYSROOT.tmp" && mkdir -p "$SYSROOT.tmp/x"
    for deb in "$apt_dir"/debs/musl-dev_*_"$DEBARCH".deb; do
        dpkg -x "$deb" "$SYSROOT.tmp/x"
    done
    [ -f "$SYSROOT.tmp/x/usr/lib/$MUSL/libc.a" ] || die "musl-dev:$DEBARCH has no libc.a"
    mv "$SYSROOT.tmp/x/usr/lib/$MUSL" "$SYSROOT.tmp/lib"
    mv "$SYSROOT.tmp/x/usr/include/$MUSL" "$SYSROOT.tmp/include"
    # musl's headers do not carry the kernel's; Debian's cross kernel headers
    # are libc-independent.
    for d in linux asm asm-generic mtd; do
        [ -d "/usr/$GNU/include/$d" ] && cp -r "/usr/$GNU/include/$d" "$SYSROOT.tmp/include/"
    done
    rm -rf "$SYSROOT.tmp/x" "$SYSROOT" && mv "$SYSROOT.tmp" "$SYSROOT"
}

# Compiler and linker wrappers pointing Debian's glibc-targeted cross gcc at
# the musl sysroot (what Debian's musl-gcc specs do, written out so the C++
# headers can sit before musl's: libstdc++'s <cstdlib> needs #include_next).
musl_wrappers() {
    BIN="$CROSS_DIR/$TRIPLE/bin"
    mkdir -p "$BIN"
    gcclib=$(dirname "$("$GNU-gcc" -print-libgcc-file-name)")
    gccver=$("$GNU-gcc" -dumpversion)
    cxxinc="/usr/$GNU/include/c++/$gccver"
    [ -d "$cxxinc" ] || cxxinc=$("$GNU-g++" -print-sysroot)"/usr/$GNU/include/c++/$gccver"
    cat >"$BIN/cc" <<EOF
#!/bin/sh
exec $GNU-gcc -nostdinc -isystem "$SYSROOT/include" -isystem "$gcclib/include" "\$@"
EOF
    # libstdc++'s headers were configured for glibc and test its version with
    # __GLIBC_PREREQ, which musl lacks: answering "recent" picks the paths
    # that suit musl too (no obsolete isinf/isnan, non-weak pthread calls).
    cat >"$BIN/c++" <<EOF
#!/bin/sh
exec $GNU-g++ '-D__GLIBC_PREREQ(maj,min)=1' -nostdinc -isystem "$cxxinc" -isystem "$cxxinc/$GNU" -isystem "$cxxinc/backward" \\
    -isystem "$SYSROOT/include" -isystem "$gcclib/include" "\$@"
EOF
    # Static, non-PIE: musl's crt1.o, gcc's crtbeginT.o. libsupc++ (from the
    # glibc-targeted cross gcc) is OpenH264's C++ runtime: its objects use
    # only malloc/free/abort/pthread/stdio calls that musl provides with the
    # same ABI (see cross/README.md).
    cat >"$BIN/musl-gcc" <<EOF
#!/bin/sh
exec $GNU-gcc -nostdlib -static "$SYSROOT/lib/crt1.o" "$SYSROOT/lib/crti.o" "$gcclib/crtbeginT.o" \\
    "$CROSS_DIR/$TRIPLE/unwind/musl_compat.o" -L"$SYSROOT/lib" -L"$gcclib" "\$@" \\
    -Wl,--start-group -lc -lgcc -Wl,--end-group "$gcclib/crtend.o" "$SYSROOT/lib/crtn.o"
EOF
    chmod +x "$BIN/cc" "$BIN/c++" "$BIN/musl-gcc"
}

# Linked into every musl binary (an object, not an archive member, so that
# its definitions come first):
# - the one glibc symbol the glibc-built libsupc++ needs that musl lacks:
#   guard.o (function-local statics, used by OpenH264) reads glibc's
#   __libc_single_threaded; 0 means "maybe threaded", the always-safe path;
# - libsupc++'s std::terminate handler: its default, the verbose one, pulls
#   in the C++ demangler (48 KB of MIPS code) to name the uncaught exception.
#   OpenH264 throws nothing but bad_alloc; abort() is what both end in.
musl_compat() {
    # Always made afresh (one small compile): an old object must not linger.
    cat >"$UNWIND_DIR/musl_compat.c" <<'EOF'
#include <stdlib.h>
char __libc_single_threaded = 0;
static void terminate_quietly(void) { abort(); }
void (*cxa_terminate_handler)(void) __asm__("_ZN10__cxxabiv119__terminate_handlerE") = terminate_quietly;
EOF
    "$BIN/cc" -Os -c "$UNWIND_DIR/musl_compat.c" -o "$UNWIND_DIR/musl_compat.o"
}

# Trap 1: std built from source on musl links `-lunwind`, and only the
# prebuilt musl std ships a libunwind.a.
musl_unwinder() {
    UNWIND_DIR="$CROSS_DIR/$TRIPLE/unwind"
    [ -f "$UNWIND_DIR/libunwind.a" ] && return 0
    mkdir -p "$UNWIND_DIR"
    case $ARCH in
    armv7)
        # gcc's unwinder (ARM EHABI) serves.
        cp "$(dirname "$("$GNU-gcc" -print-libgcc-file-name)")/libgcc_eh.a" "$UNWIND_DIR/libunwind.a" ;;
    mipsel)
        # gcc's libgcc_eh needs glibc's _dl_find_object; LLVM's libunwind,
        # whose sources ship in rust-src, does not.
        src="$(rustc --print sysroot)/lib/rustlib/src/rust/src/llvm-project/libunwind"
        [ -d "$src/src" ] || die "no libunwind sources in rust-src ($src)"
        obj="$UNWIND_DIR/obj" && rm -rf "$obj" && mkdir -p "$obj"
        uflags="-O2 -fPIC -funwind-tables -D_LIBUNWIND_IS_NATIVE_ONLY -D_LIBUNWIND_DISABLE_VISIBILITY_ANNOTATIONS -I$src/include"
        for f in UnwindLevel1.c UnwindLevel1-gcc-ext.c UnwindRegistersSave.S UnwindRegistersRestore.S; do
            # shellcheck disable=SC2086
            "$BIN/cc" $uflags -std=c99 -c "$src/src/$f" -o "$obj/$f.o"
        done
        for f in libunwind.cpp; do
            # shellcheck disable=SC2086
            "$BIN/c++" $uflags -std=c++17 -fno-exceptions -fno-rtti -nostdinc++ -c "$src/src/$f" -o "$obj/$f.o"
        done
        "$GNU-ar" rcs "$UNWIND_DIR/libunwind.a" "$obj"/*.o ;;
    esac
}

# ---- environment -------------------------------------------------------------

setup() {
    install_packages
    install_rust_src
    T=$(echo "$TRIPLE" | tr 'a-z-' 'A-Z_')
    t=$(echo "$TRIPLE" | tr '-' '_')
    flags="-C target-feature=+crt-static"
    if [ "$LIBC" = musl ]; then
        musl_sysroot
        musl_wrappers
        musl_unwinder
        musl_compat
        export "CC_$t=$BIN/cc" "CXX_$t=$BIN/c++" "CARGO_TARGET_${T}_LINKER=$BIN/musl-gcc"
        # OpenH264's C++ runtime: libsupc++ only (new/delete, guards, RTTI,
        # personality); it uses nothing of libstdc++ proper.
        export "CXXSTDLIB_$t=supc++"
        # We link the crt objects ourselves (the musl-gcc wrapper), so rustc must
        # not look for its self-contained ones, which build-std lacks.
        flags="$flags -C link-self-contained=no -L native=$UNWIND_DIR"
    else
        export "CC_$t=$GNU-gcc" "CXX_$t=$GNU-g++" "CARGO_TARGET_${T}_LINKER=$GNU-gcc"
    fi
    export "AR_$t=$GNU-ar"
    if [ "$ARCH" = mipsel ]; then
        # Trap 2: Rust's mipsel musl target is soft-float, Debian's musl and
        # gcc hard-float (fpxx): without this floats passed to/from C are
        # silently wrong (3.875 came back from SQLite as 5.3e-315).
        # Trap 3: libc's default 32-bit time_t for musl vs musl 1.2's 64-bit
        # one (and rustix's): async-io timers never fired.
        flags="$flags -C target-feature=-soft-float,+fpxx,+nooddspreg --cfg libc_unstable_musl_v1_2"
    fi
    case $ARCH in
    mipsel*)
        # Position-independent MIPS code goes through the GOT for every
        # global and call: a static executable needs none of it, and the
        # non-PIC code is about 15% smaller (it keeps the budget of 4 MiB).
        flags="$flags -C relocation-model=static"
        export "CFLAGS_$t=-fno-pic" "CXXFLAGS_$t=-fno-pic" ;;
    esac
    # CROSS_EXTRA_RUSTFLAGS: e.g. to check that the trap tests fail without
    # a trap flag (CROSS_DROP_TRAP=float|time does that).
    case ${CROSS_DROP_TRAP:-} in
    float) flags=$(echo "$flags" | sed 's/ -C target-feature=-soft-float,+fpxx,+nooddspreg//') ;;
    time) flags=$(echo "$flags" | sed 's/ --cfg libc_unstable_musl_v1_2//') ;;
    esac
    export "CARGO_TARGET_${T}_RUSTFLAGS=$flags ${CROSS_EXTRA_RUSTFLAGS:-}"
    export "CARGO_TARGET_${T}_RUNNER=$QEMU"
    # SQLite must not dlopen extensions in a static binary; and the bundled
    # build's extras that Vigil's index never uses (full-text search, R-tree,
    # dbstat, STAT4, JSON functions) cost 400 KB of MIPS code.
    export LIBSQLITE3_FLAGS="-DSQLITE_OMIT_LOAD_EXTENSION -USQLITE_ENABLE_LOAD_EXTENSION \
-USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS -USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE \
-USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_ENABLE_STAT4 -DSQLITE_OMIT_JSON"
    # Backtrace capture is very slow under qemu.
    export RUST_BACKTRACE=0
    # build-std on stable: the documented escape hatch, for this one use.
    export RUSTC_BOOTSTRAP=1
}

setup
case $CMD in
deps) ;;
build)
    # [profile.embedded] in Cargo.toml: release, optimised for size.
    # std without its `backtrace` feature: the binary is stripped, so the
    # symbolizer (gimli, addr2line, demangler: ~100 KB) could name nothing.
    # A board records cameras: the built-in camera's clips stay out
    # (VIGIL_FEATURES overrides, e.g. "h264-snapshots builtin-camera").
    cargo build --profile embedded -j"$JOBS" -Zbuild-std=std,panic_unwind \
        -Zbuild-std-features=panic-unwind,optimize_for_size --target "$TRIPLE" \
        --no-default-features --features "${VIGIL_FEATURES:-h264-snapshots}" "$@"
    bin="$ROOT/target/$TRIPLE/embedded/vigil"
    # Cargo leaves an up-to-date binary alone: strip it only once.
    if "$GNU-readelf" -S "$bin" | grep -q '\.symtab'; then
        cp "$bin" "$bin.syms"
        "$GNU-strip" "$bin"
    fi
    say "$bin: $(stat -c %s "$bin") bytes, static, stripped (symbols kept in vigil.syms)"
    ;;
test)
    cargo test -j"$JOBS" -Zbuild-std --target "$TRIPLE" --lib "$@" ;;
cargo)
    cargo "$@" ;;
*) die "unknown command '$CMD'" ;;
esac
