#!/bin/sh
# fresh-build.sh: the README's first command on a fresh machine.  A fresh `git clone` of
# this tree (its commit, plus the changes `git diff HEAD` shows: staged new files count,
# untracked ones do not, as they would not reach CI) is built with `make build`, the
# build part of `make run`, while the test-only package libcmocka-dev is hidden, as it is on
# a machine where only `scripts/install-deps.sh build` ran; then the ferryd it built must
# start as `make run` starts it and greet a client with 220.
#
#   scripts/fresh-build.sh        as root (or where unprivileged user namespaces work)
#
# cmocka is hidden in a private mount namespace (unshare -m), so nothing changes outside
# this script: its pkg-config file by a copy of its directory without it, its headers by
# stubs that stop any compilation including them, its CMake package directory by an empty
# one.  The stage fails if cmocka can still be found there, if the build fails, if the
# build built the unit tests, or if ferryd does not answer.  Everything lives in a temporary
# directory, removed at the end; ferryd is stopped by its pid.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
pkg=libcmocka-dev

if [ "${1:-}" = "--hidden" ]; then
	# Second half: runs inside the private mount namespace.
	shift
	clone=$1
	for f in $(dpkg -L "$pkg"); do
		case "$f" in
		*.pc)
			copy=$(mktemp -d "$clone/../pc.XXXXXX")
			cp -a "$(dirname "$f")/." "$copy/"
			rm -f "$copy/$(basename "$f")"
			mount --bind "$copy" "$(dirname "$f")"
			;;
		*.h)
			[ -f "$f" ] || continue
			stub=$clone/../stub.h
			echo "#error $f: hidden by scripts/fresh-build.sh (a test-only package)" >"$stub"
			mount --bind "$stub" "$f"
			;;
		*/cmake/*)
			[ -d "$f" ] && [ "$(basename "$f")" != cmake ] || continue
			empty=$(mktemp -d "$clone/../empty.XXXXXX")
			mount --bind "$empty" "$f"
			;;
		esac
	done
	if pkg-config --exists cmocka; then
		echo "fresh-build: cmocka is still visible to pkg-config; hiding it failed" >&2
		exit 1
	fi
	exec make --no-print-directory -C "$clone" build
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fresh.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# ferryd, started as root, serves ./srv as an unprivileged user: it must reach it.
chmod 755 "$tmp"
clone=$tmp/ferry

if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
	echo "fresh-build: $pkg is not installed here, so there is nothing to hide"
fi
if [ "$(id -u)" -eq 0 ]; then
	unshare="unshare -m"
else
	unshare="unshare -r -m"
fi
if ! $unshare true 2>/dev/null; then
	echo "fresh-build: skipped: no private mount namespace here ($unshare failed)"
	exit 0
fi

start=$(date +%s)
git clone -q --no-checkout "$top" "$clone"
git -C "$clone" checkout -q "$(git -C "$top" rev-parse HEAD)"
git -C "$top" diff HEAD --binary >"$tmp/changes.diff"
if [ -s "$tmp/changes.diff" ]; then
	git -C "$clone" apply --whitespace=nowarn "$tmp/changes.diff"
fi

$unshare "$top/scripts/fresh-build.sh" --hidden "$clone"
if [ -e "$clone/build/tests/unit/test_buf" ]; then
	echo "fresh-build: the unit tests were built although cmocka was hidden" >&2
	exit 1
fi

# As `make run` starts it, on a free loopback port.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$clone/srv"
(cd "$clone" && exec ./build/src/server/ferryd --root ./srv --listen "127.0.0.1:$port") \
	>"$tmp/ferryd.log" 2>&1 &
pid=$!
greeting=$(/usr/bin/python3 - "$port" <<'PY'
import socket, sys, time
end = time.monotonic() + 10
while True:
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2) as s:
            s.settimeout(5)
            print(s.makefile("rb").readline().decode(errors="replace").strip())
        break
    except OSError as e:
        if time.monotonic() > end:
            print(f"no connection: {e}")
            break
        time.sleep(0.1)
PY
)
case "$greeting" in
220*) ;;
*)
	echo "fresh-build: ferryd did not greet with 220 on 127.0.0.1:$port: $greeting" >&2
	cat "$tmp/ferryd.log" >&2
	exit 1
	;;
esac
kill "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
# SIGTERM is a graceful stop: exit 0, or killed by the signal itself (143).
if [ "$rc" -ne 0 ] && [ "$rc" -ne 143 ]; then
	echo "fresh-build: ferryd exited with $rc at SIGTERM" >&2
	cat "$tmp/ferryd.log" >&2
	exit 1
fi
echo "fresh-build: a fresh clone built without $pkg and ferryd answered \"$greeting\"" \
	"($(($(date +%s) - start)) s)"
