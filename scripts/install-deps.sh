#!/bin/sh
# Install the Debian packages ferry needs, only those missing.
#   scripts/install-deps.sh build   what building and running ferryd needs
#   scripts/install-deps.sh test    that, plus what the test suite needs
set -eu
build_pkgs="meson ninja-build pkg-config gcc libevent-dev libssl-dev libcrypt-dev libcap-dev libseccomp-dev libedit-dev libpq-dev libldap-dev libpam0g-dev"
test_pkgs="libcmocka-dev openssl ca-certificates clang libclang-rt-14-dev python3 python3-pytest python3-pyftpdlib python3-openssl curl lftp wget iproute2 procps man-db nftables iptables tcpdump valgrind rclone postgresql slapd ldap-utils"
# The FTPS matrix runs basic-ftp on Node: Debian's node and npm unless some are installed.
command -v node >/dev/null 2>&1 || test_pkgs="$test_pkgs nodejs"
command -v npm >/dev/null 2>&1 || test_pkgs="$test_pkgs npm"
case "${1:-build}" in
build) want="$build_pkgs" ;;
test) want="$build_pkgs $test_pkgs" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Quiet, but a failure prints apt-get's whole output (scripts/quiet.sh).
quiet="$(dirname "$0")/quiet.sh"
"$quiet" apt-get update -qq
# postgresql and slapd start a system-wide server from their install scripts unless a
# policy-rc.d forbids it (Debian's container images ship one).  The tests start their own,
# on loopback, in temporary directories: nothing may listen on 5432 or 389 because of them.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	made_policy=1
	trap 'rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
"$quiet" apt-get install -y -qq --no-install-recommends $missing
[ -z "$made_policy" ] || rm -f "$policy"
