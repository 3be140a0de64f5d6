#!/bin/sh
# fuzz/run.sh BUILDDIR SECONDS: run every libFuzzer target in BUILDDIR/fuzz for SECONDS.
#
# Each target works on a temporary copy of its seed corpus (the repository's corpus is
# never modified) with the FTP dictionary.  Crash inputs are kept in
# BUILDDIR/fuzz-artifacts/.  Prints the executions each target reached, also written to
# BUILDDIR/fuzz-record.txt, and exits non-zero if any target found something (a crash, a
# leak, a time-out of one input) or could not run.
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
record=$builddir/fuzz-record.txt
mkdir -p "$artifacts"
printf '# fuzz/run.sh %s %s s a target, %s\n' "$builddir" "$seconds" \
	"$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$record"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM

failed=0
found=0
for target in command hostport path reply listing netaddr ascii num url netrc logsafe user_settings quota channel session; do
	bin=$builddir/fuzz/fuzz_$target
	if [ ! -x "$bin" ]; then
		echo "fuzz_$target: not built (configure with CC=clang and -Dfuzz=true)" >&2
		echo "fuzz_$target: not built" >>"$record"
		failed=1
		continue
	fi
	# The session target runs the server, which logs every session on stderr:
	# close_fd_mask=2 silences that, keeping libFuzzer's and the sanitizers' reports.  An
	# input that runs for seconds is a hang there, not a slow parser: a finding.
	extra=
	case $target in
	session) extra="-close_fd_mask=2 -timeout=20" ;;
	esac
	found=1
	corpus=$work/$target
	mkdir -p "$corpus"
	if [ -d "$here/corpus/$target" ]; then
		cp -R "$here/corpus/$target/." "$corpus/"
	fi
	log=$work/$target.log
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$seconds" -max_len=8192 -dict="$here/ftp.dict" \
		-print_final_stats=1 -artifact_prefix="$artifacts/fuzz_$target-" $extra \
		"$corpus" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ -z "$execs" ]; then
		execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
	fi
	echo "fuzz_$target: ${execs:-0} execs in $seconds s" | tee -a "$record"
	if [ $rc -ne 0 ]; then
		echo "fuzz_$target: FAILED (exit $rc); log follows" >&2
		echo "fuzz_$target: FAILED (exit $rc)" >>"$record"
		tail -n 60 "$log" >&2
		failed=1
	fi
done

if [ $found -eq 0 ]; then
	exit 2
fi
exit $failed
