#!/bin/sh
# check-docs.sh: keep the sample configuration and the man pages in step with the code.
#
#   packaging/check-docs.sh [FERRYD]      (default: build/src/server/ferryd)
#
# The configuration keys come from `ferryd --help` (which prints config_table[]), the FTP
# verbs from src/server/commands.def.  Checks that every key is in packaging/ferryd.conf,
# docs/ferryd.conf.5 and docs/ferryd.8 (and no key there is unknown), that every verb is
# in docs/ferryd.8, and that the sample passes --check-config both as shipped and with
# every commented-out setting switched on.  Exits 1 on the first kind of drift found.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
ferryd=${1:-$top/build/src/server/ferryd}
sample=$top/packaging/ferryd.conf
man8=$top/docs/ferryd.8
man5=$top/docs/ferryd.conf.5
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bad() {
	echo "check-docs: $*" >&2
	fail=1
}

# Keys, as in the file (underscores), from the option list of --help.
"$ferryd" --help | sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p' |
	grep -v -x -e config -e check-config -e 'help,' | tr - _ | sort -u >"$tmp/keys"
test -s "$tmp/keys" || { echo "check-docs: no keys from $ferryd --help" >&2; exit 1; }

while read -r key; do
	opt=$(echo "$key" | sed 's/_/\\\\-/g')
	grep -q "^#\{0,1\}$key = \{0,1\}" "$sample" || bad "$key missing from packaging/ferryd.conf"
	grep -q "^\.BI $key \" = " "$man5" || bad "$key missing from docs/ferryd.conf.5"
	grep -q "^\.B[IR] \\\\-\\\\-${opt}[ \"]" "$man8" ||
		bad "--$(echo "$key" | tr _ -) missing from docs/ferryd.8"
done <"$tmp/keys"

# Nothing documented that the code does not know.
sed -n 's/^#\{0,1\}\([a-z_0-9]*\) =.*/\1/p' "$sample" | sort -u >"$tmp/sample_keys"
sed -n 's/^\.BI \([a-z_0-9]*\) " = .*/\1/p' "$man5" | sort -u >"$tmp/man5_keys"
for f in sample_keys man5_keys; do
	comm -23 "$tmp/$f" "$tmp/keys" | while read -r k; do
		echo "check-docs: $f: unknown key $k" >&2
		touch "$tmp/unknown"
	done
done
test ! -e "$tmp/unknown" || fail=1

# Every FTP verb of the command table has its line in ferryd(8).
sed -n 's/^FTP_COMMAND(\([A-Z]*\),.*/\1/p' "$top/src/server/commands.def" >"$tmp/verbs"
while read -r verb; do
	grep -q "^\.B[IR]\{0,1\} \(.* \)\{0,1\}\"\{0,1\}$verb\b" "$man8" ||
		bad "command $verb missing from docs/ferryd.8"
done <"$tmp/verbs"

# The sample as shipped (everything commented out: a root must come from outside) ...
mkdir "$tmp/root"
"$ferryd" --check-config --config "$sample" --root "$tmp/root" >/dev/null ||
	bad "packaging/ferryd.conf fails --check-config"
# ... and with every commented-out setting switched on.
sed -n 's/^#\([a-z_0-9]* =.*\)/\1/p' "$sample" >"$tmp/all.conf"
"$ferryd" --check-config --config "$tmp/all.conf" --root "$tmp/root" >/dev/null ||
	bad "packaging/ferryd.conf with every setting uncommented fails --check-config"

# The man pages render without warnings.
if command -v man >/dev/null 2>&1; then
	for page in "$man8" "$man5"; do
		w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
		test -z "$w" || bad "$page: $w"
	done
fi

if [ "$fail" -eq 0 ]; then
	echo "check-docs: OK ($(wc -l <"$tmp/keys") keys, $(wc -l <"$tmp/verbs") commands)"
fi
exit "$fail"
