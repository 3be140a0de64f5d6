#!/bin/sh
# The whole test suite: unit, wire and client tests on a normal build and on an ASan+UBSan build,
# the build of a fresh clone without the test packages (scripts/fresh-build.sh), the
# network-namespace tests on the normal build (root only; skipped otherwise), the benchmark
# beside Pure-FTPd in its short mode (root only), a subset
# of the wire tests under Valgrind memcheck, then each fuzz target for a bounded time.
# Exits non-zero on the first failing stage.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BUILD_SAN=${BUILD_SAN:-build-san}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
PYTEST="/usr/bin/python3 -m pytest"

# Under Valgrind (20-50 times slower, a second to start each process) a subset that still
# sends every command of commands.def, over both kinds of data connection and both address
# families, with transfers, ABOR and time-outs, and the TLS commands with a few TLS sessions.
# Left out, to keep CI within its time: the slow tests (100 MiB files, 100,000 entries),
# the listings (test_listing.py), the byte-exact matrix of test_transfer.py (test_modes.py
# moves data in every mode), and all but one variant of the tests that only feed
# malformed arguments to a parser (those are fuzzed).
VALGRIND_TESTS="tests/wire/test_commands.py tests/wire/test_transfer.py tests/wire/test_modes.py
	tests/wire/test_tls.py::test_auth_sequence_errors tests/wire/test_tls.py::test_explicit_transfers
	tests/wire/test_tls.py::test_ccc tests/wire/test_tls.py::test_abort_tls_download
	tests/wire/test_tls.py::test_client_vanishes_during_tls_transfers
	tests/wire/test_tls.py::test_implicit_tls"
VALGRIND_SELECT="not test_port_malformed_is_501 and not test_eprt_malformed and not (test_missing_argument_is_501 and not USER) and not byte_exact_ipv4"

stage() { printf '\n==== %s\n' "$*"; }

# setup DIR [OPTION...]: configure a build directory, or configure it again with these
# options (one that `make run` set up has tests=auto, and maybe no cmocka at the time).
# tests=enabled everywhere the unit tests run: without cmocka, configuring fails instead
# of skipping them.  Quiet unless it fails (scripts/quiet.sh).
setup() {
	dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		scripts/quiet.sh meson setup --reconfigure "$dir" "$@"
	else
		scripts/quiet.sh meson setup "$dir" "$@"
	fi
}

stage "build ($BUILD)"
setup "$BUILD" -Dtests=enabled
ninja -C "$BUILD"

stage "documentation in step with the code"
packaging/check-docs.sh "$PWD/$BUILD/src/server/ferryd"

stage "a fresh clone builds with the build packages only, and ferryd answers"
# The README's `make run` on a fresh machine (cmocka hidden; about 20 s).
scripts/fresh-build.sh

stage "unit tests ($BUILD)"
meson test -C "$BUILD" --print-errorlogs

stage "wire tests ($BUILD)"
FERRYD="$PWD/$BUILD/src/server/ferryd" $PYTEST -q tests/wire

stage "client tests ($BUILD)"
# ferry against ferryd and pyftpdlib on loopback ports.
FERRY="$PWD/$BUILD/src/client/ferry" FERRYD="$PWD/$BUILD/src/server/ferryd" $PYTEST -q tests/client

stage "network-namespace tests ($BUILD)"
if [ "$(id -u)" -eq 0 ]; then
	FERRYD="$PWD/$BUILD/src/server/ferryd" $PYTEST -q tests/netns
else
	echo "skipped: the network-namespace tests need root"
fi

stage "benchmark beside a peer, short mode ($BUILD)"
# bench/peers.py --quick: ferryd and Pure-FTPd (installed from Debian if missing), every
# scenario at a tiny size, one round: not a measurement, a proof that the benchmark runs
# and that its checks (reply codes, byte counts, checksums, listings) hold for both.
if [ "$(id -u)" -eq 0 ]; then
	FERRYD="$PWD/$BUILD/src/server/ferryd" /usr/bin/python3 bench/peers.py --quick --install
else
	echo "skipped: bench/peers.py runs the servers as root"
fi

stage "wire tests under Valgrind memcheck ($BUILD)"
# Every ferryd process (master, workers, helpers) writes its own report; any error, a
# definite leak included, fails the stage, and so does a process that ended without its
# report (killed).  tests/wire/valgrind-ferryd explains how ferryd runs under Valgrind.
vg_dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-valgrind.XXXXXX")
vg_failed=0
vg_start=$(date +%s)
# shellcheck disable=SC2086
FERRYD="$PWD/tests/wire/valgrind-ferryd" FERRYD_VALGRIND_BIN="$PWD/$BUILD/src/server/ferryd" \
	FERRYD_VALGRIND_DIR="$vg_dir" $PYTEST -q -m "not slow" -k "$VALGRIND_SELECT" \
	$VALGRIND_TESTS || vg_failed=1
vg_logs=$(find "$vg_dir/logs" -name 'vg.*.log' 2>/dev/null | sort)
vg_bad=""
for f in $vg_logs; do
	if grep -Eq 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$f" || ! grep -q 'ERROR SUMMARY:' "$f"; then
		vg_bad="$vg_bad $f"
	fi
done
echo "valgrind: $(echo "$vg_logs" | grep -c .) processes checked in $(($(date +%s) - vg_start)) s," \
	"$(echo "$vg_bad" | wc -w) with errors or no report"
for f in $vg_bad; do
	printf '\n---- %s\n' "$f"
	cat "$f"
done
if [ -z "$vg_logs" ]; then
	echo "valgrind: no report written: ferryd did not run under Valgrind" >&2
	vg_failed=1
fi
if [ -n "$vg_bad" ] || [ $vg_failed -ne 0 ]; then
	echo "valgrind: FAILED; the reports are in $vg_dir/logs" >&2
	exit 1
fi
rm -rf "$vg_dir"

stage "build with AddressSanitizer and UndefinedBehaviorSanitizer ($BUILD_SAN)"
setup "$BUILD_SAN" -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false \
	-Dbuildtype=debug
ninja -C "$BUILD_SAN"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

stage "unit tests under sanitizers ($BUILD_SAN)"
meson test -C "$BUILD_SAN" --print-errorlogs

stage "wire tests under sanitizers ($BUILD_SAN)"
FERRYD="$PWD/$BUILD_SAN/src/server/ferryd" FERRY_SANITIZED=1 $PYTEST -q tests/wire

stage "client tests under sanitizers ($BUILD_SAN)"
FERRY="$PWD/$BUILD_SAN/src/client/ferry" FERRYD="$PWD/$BUILD_SAN/src/server/ferryd" FERRY_SANITIZED=1 \
	$PYTEST -q tests/client

stage "fuzzing, $FUZZ_SECONDS s a target ($BUILD_FUZZ)"
CC=clang setup "$BUILD_FUZZ" -Dfuzz=true -Dtests=disabled
ninja -C "$BUILD_FUZZ"
# run.sh fails on any finding; its record of the executions reached stays beside the build.
fuzz_rc=0
fuzz/run.sh "$BUILD_FUZZ" "$FUZZ_SECONDS" || fuzz_rc=$?
echo "record: $BUILD_FUZZ/fuzz-record.txt"
[ $fuzz_rc -eq 0 ] || exit $fuzz_rc

stage "all tests passed"
