#!/bin/sh
# The whole test suite: unit and wire tests on a normal build and on an ASan+UBSan build,
# the network-namespace tests on the normal build (root only; skipped otherwise), then each
# fuzz target for a bounded time.  Exits non-zero on the first failing stage.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BUILD_SAN=${BUILD_SAN:-build-san}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
PYTEST="/usr/bin/python3 -m pytest"

stage() { printf '\n==== %s\n' "$*"; }

stage "build ($BUILD)"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD"

stage "documentation in step with the code"
packaging/check-docs.sh "$PWD/$BUILD/src/server/ferryd"

stage "unit tests ($BUILD)"
meson test -C "$BUILD" --print-errorlogs

stage "wire tests ($BUILD)"
FERRYD="$PWD/$BUILD/src/server/ferryd" $PYTEST -q tests/wire

stage "network-namespace tests ($BUILD)"
if [ "$(id -u)" -eq 0 ]; then
	FERRYD="$PWD/$BUILD/src/server/ferryd" $PYTEST -q tests/netns
else
	echo "skipped: the network-namespace tests need root"
fi

stage "build with AddressSanitizer and UndefinedBehaviorSanitizer ($BUILD_SAN)"
[ -f "$BUILD_SAN/build.ninja" ] || meson setup "$BUILD_SAN" -Db_sanitize=address,undefined \
	-Db_lundef=false -Dbuildtype=debug >/dev/null
ninja -C "$BUILD_SAN"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

stage "unit tests under sanitizers ($BUILD_SAN)"
meson test -C "$BUILD_SAN" --print-errorlogs

stage "wire tests under sanitizers ($BUILD_SAN)"
FERRYD="$PWD/$BUILD_SAN/src/server/ferryd" FERRY_SANITIZED=1 $PYTEST -q tests/wire

stage "fuzzing, $FUZZ_SECONDS s a target ($BUILD_FUZZ)"
[ -f "$BUILD_FUZZ/build.ninja" ] || CC=clang meson setup "$BUILD_FUZZ" -Dfuzz=true -Dtests=false >/dev/null
ninja -C "$BUILD_FUZZ"
fuzz/run.sh "$BUILD_FUZZ" "$FUZZ_SECONDS"

stage "all tests passed"
