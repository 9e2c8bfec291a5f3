#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-abi.sh HEADER MAP LIBRARY - libumirror exports what it declares,
# each symbol by name, each with a version:
#  - the UM_EXPORT functions of HEADER, the names the version script MAP
#    lists (no wildcard but the local "*") and the functions LIBRARY
#    exports are the same set;
#  - every exported function carries a version node of MAP (@@UMIRROR_x).
# Exit 0 all good, 1 a difference (listed), 2 usage.
set -u

if [ $# -ne 3 ]; then
	echo "usage: $0 HEADER MAP LIBRARY" >&2
	exit 2
fi
header=$1 map=$2 lib=$3
status=0
bad() {
	echo "FAIL $*"
	status=1
}
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

sed -n 's/^UM_EXPORT .*[ *]\(um_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u >"$tmp/header"
# the map without comments; names are the "name;" lines of global: parts
sed -e 's|/\*.*\*/||g' -e '/\/\*/,/\*\//d' "$map" |
	awk '/global:/ { g = 1; next } /local:/ { g = 0; next }
	     g && /^[ \t]*[A-Za-z_][A-Za-z0-9_]*;/ { gsub(/[ \t;]/, ""); print }' |
	sort >"$tmp/map.all"
sed -e 's|/\*.*\*/||g' -e '/\/\*/,/\*\//d' "$map" |
	awk '/global:/ { g = 1; next } /local:/ { g = 0; next } g && /[*?]/' >"$tmp/wild"
nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' >"$tmp/dyn.v"
sed 's/@.*//' "$tmp/dyn.v" | sort -u >"$tmp/dyn"

[ -s "$tmp/header" ] || bad "$header: no UM_EXPORT function found"
[ -s "$tmp/wild" ] && bad "$map: a wildcard in a global: list: $(cat "$tmp/wild")"
[ "$(uniq -d "$tmp/map.all")" = "" ] || bad "$map lists twice: $(uniq -d "$tmp/map.all")"
sort -u "$tmp/map.all" >"$tmp/map"
# missing A B: the names in A that B lacks
missing() {
	comm -23 "$tmp/$1" "$tmp/$2" | while read -r s; do
		echo "FAIL $s: in the $1 ($3), not in the $2"
	done
}
{
	missing header map "$header"
	missing map header "$map"
	missing header dyn "$header"
	missing dyn header "exported by $lib"
} >"$tmp/diff"
if [ -s "$tmp/diff" ]; then
	cat "$tmp/diff"
	status=1
fi
nodes=$(sed -n 's/^\([A-Z][A-Z0-9_.]*\)[ \t]*{.*/\1/p' "$map")
while read -r s; do
	v=${s#*@@}
	case $s in *@@*) ;; *) bad "$s: exported without a version"; continue ;; esac
	printf '%s\n' $nodes | grep -qx "$v" || bad "$s: version $v is not a node of $map"
done <"$tmp/dyn.v"

[ $status = 0 ] &&
	echo "ok   $(wc -l <"$tmp/header") functions: header, map and $(basename "$lib") agree, all versioned"
exit $status
