#!/bin/sh
# quiet.sh COMMAND [ARG...]: run one step of the build without its chatter, but never hide
# why it failed.  The output goes to a temporary log, which is printed on standard error,
# after the command line, when the command fails.  The exit status is the command's.
# `make build` (and so `make run`) and scripts/install-deps.sh run their steps through it.
set -u
log=$(mktemp "${TMPDIR:-/tmp}/ferry-step.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
trap 'exit 130' INT TERM
rc=0
"$@" >"$log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
	printf '\n%s: failed (exit %d); its output follows.\n\n' "$*" "$rc" >&2
	cat "$log" >&2
	printf '\n%s: failed (exit %d); its output is above.\n' "$*" "$rc" >&2
fi
exit "$rc"
