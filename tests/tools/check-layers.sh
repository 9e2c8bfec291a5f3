#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-layers.sh LAYERS SRCDIR [OBJECT...] - every include and every call
# among the modules of SRCDIR goes to a lower floor.
#
# LAYERS lists the floors, lowest first, one line each: "N module...". A
# module is NAME.c and/or NAME.h in SRCDIR. Checked:
#  - every file of SRCDIR is a listed module, and every listed module exists;
#  - an #include "x.h" of a module in SRCDIR names a module on a lower floor
#    (or the file's own header);
#  - with OBJECTs (NAME.c.o, NAME.o): every symbol an object leaves undefined
#    that another object defines belongs to a module on a lower floor. This
#    catches a call made through a header that declares another module's
#    function.
# Paths must not contain blanks. Exit 0 all good, 1 a violation (each is
# listed), 2 usage.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 LAYERS SRCDIR [OBJECT...]" >&2
	exit 2
fi
layers=$1 src=$2
shift 2
# ctest hands $<TARGET_OBJECTS:...> over as one ;-separated argument
objs=$(printf '%s;' "$@" | tr ';' '\n' | sed '/^$/d')
status=0
bad() {
	echo "FAIL $*"
	status=1
}

floor_of() {
	awk -v m="$1" '!/^#/ && NF { for (i = 2; i <= NF; i++) if ($i == m) { print $1; exit } }' \
		"$layers"
}

# every file is placed, every placed module exists
for f in "$src"/*.c "$src"/*.h; do
	[ -e "$f" ] || continue
	m=$(basename "$f"); m=${m%.[ch]}
	[ -n "$(floor_of "$m")" ] || bad "$f: module $m is on no floor of $layers"
done
for m in $(awk '!/^#/ && NF { for (i = 2; i <= NF; i++) print $i }' "$layers"); do
	[ -e "$src/$m.c" ] || [ -e "$src/$m.h" ] || bad "$layers: module $m has no file in $src"
done

# includes
edges=0
for f in "$src"/*.c "$src"/*.h; do
	[ -e "$f" ] || continue
	m=$(basename "$f"); m=${m%.[ch]}
	fl=$(floor_of "$m")
	[ -n "$fl" ] || continue
	for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
		[ -e "$src/$h" ] || continue # not ours: proto/, the public header
		t=${h%.h}
		[ "$t" = "$m" ] && continue
		tf=$(floor_of "$t")
		edges=$((edges + 1))
		[ -n "$tf" ] && [ "$tf" -lt "$fl" ] ||
			bad "$(basename "$f") (floor $fl) includes $h (floor ${tf:-?}): not below"
	done
done

# calls, from the objects' symbol tables
calls=0
if [ -n "$objs" ]; then
	tmp=$(mktemp -d) || exit 2
	trap 'rm -rf "$tmp"' EXIT
	for o in $objs; do
		m=$(basename "$o"); m=${m%.o}; m=${m%.c}
		nm "$o" | awk -v m="$m" '$2 ~ /^[TDBR]$/ { print $3, m }' >>"$tmp/defs"
		nm -u "$o" | awk -v m="$m" '{ print $2, m }' >>"$tmp/uses"
	done
	sort -u "$tmp/defs" >"$tmp/d"
	sort -u "$tmp/uses" >"$tmp/u"
	# symbol user definer
	join "$tmp/u" "$tmp/d" >"$tmp/edges"
	while read -r sym user definer; do
		[ "$user" = "$definer" ] && continue
		calls=$((calls + 1))
		uf=$(floor_of "$user") df=$(floor_of "$definer")
		[ -n "$uf" ] && [ -n "$df" ] && [ "$df" -lt "$uf" ] ||
			bad "$user.c (floor ${uf:-?}) uses $sym of $definer.c (floor ${df:-?}): not below"
	done <"$tmp/edges"
	[ "$calls" -gt 0 ] || bad "no call between objects found: wrong OBJECT list?"
fi

[ "$edges" -gt 0 ] || bad "no include between modules of $src found"
[ $status = 0 ] && echo "ok   $src: $edges includes and $calls cross-module symbols go down"
exit $status
