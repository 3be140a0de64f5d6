#!/bin/sh
# fuzz/run.sh BUILDDIR SECONDS: run every libFuzzer target in BUILDDIR/fuzz for SECONDS.
#
# Each target works on a temporary copy of its seed corpus (the repository's corpus is
# never modified) with the FTP dictionary.  Crash inputs are kept in
# BUILDDIR/fuzz-artifacts/.  Prints the executions each target reached and exits non-zero
# if any target crashed.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILDDIR SECONDS" >&2
	exit 2
fi
builddir=$1
seconds=$2
case $seconds in
'' | *[!0-9]*)
	echo "$0: SECONDS must be a number" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "$0")" && pwd)
artifacts=$builddir/fuzz-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM

failed=0
found=0
for target in command hostport path reply listing netaddr; do
	bin=$builddir/fuzz/fuzz_$target
	if [ ! -x "$bin" ]; then
		echo "fuzz_$target: not built (configure with CC=clang and -Dfuzz=true)" >&2
		failed=1
		continue
	fi
	found=1
	corpus=$work/$target
	mkdir -p "$corpus"
	if [ -d "$here/corpus/$target" ]; then
		cp -R "$here/corpus/$target/." "$corpus/"
	fi
	log=$work/$target.log
	"$bin" -max_total_time="$seconds" -max_len=8192 -dict="$here/ftp.dict" \
		-print_final_stats=1 -artifact_prefix="$artifacts/fuzz_$target-" \
		"$corpus" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ -z "$execs" ]; then
		execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
	fi
	echo "fuzz_$target: ${execs:-0} execs in $seconds s"
	if [ $rc -ne 0 ]; then
		echo "fuzz_$target: FAILED (exit $rc); log follows" >&2
		tail -n 40 "$log" >&2
		failed=1
	fi
done

if [ $found -eq 0 ]; then
	exit 2
fi
exit $failed
