#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-docs.sh SOURCE_DIR UMIRRORD UMIRRORCTL - the documents agree with
# the code they describe:
#  - every long option `umirrord --help` prints is in umirrord(8), both in
#    its SYNOPSIS and as an entry of OPTIONS; the same for umirrorctl(1)'s
#    OPTIONS and `umirrorctl --help`;
#  - every value of enum um_reason (read from umirror.h) is named in
#    libumirror(3) (UM_REASON_X), has its name in um_reason_str()'s table
#    (proto/proto.c) and an entry in umirrorctl(1)'s list of watch reasons;
#  - product documents (README, CONTRIBUTING, docs/, man pages, the public
#    headers) name kernel documents, never "seed NNN" or shared/seeds,
#    which are not part of the project;
#  - each per-function page (docs/man/um_*.3) has the header's prototype
#    of every function it documents and every errno the header names for
#    it.
# Exit 0 all good, 1 something disagrees (every disagreement is listed).
set -u

if [ $# -ne 3 ]; then
	echo "usage: $0 SOURCE_DIR UMIRRORD UMIRRORCTL" >&2
	exit 1
fi
src=$1 umirrord=$2 umirrorctl=$3
status=0 fails=0
bad() {
	echo "FAIL $*"
	status=1 fails=$((fails + 1))
}

# a man page's source with troff's \- as -, and font escapes dropped
plain() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1"
}

# section NAME of a man page source (plain), without its .SH line
section() {
	plain "$1" | awk -v want="$2" '
		/^\.SH / { name = $0; sub(/^\.SH "?/, "", name); sub(/"$/, "", name);
			   on = (name == want); next }
		on'
}

# the tag line of every .TP entry in section NAME
tags() {
	section "$1" "$2" | awk '/^\.TP/ { tp = 1; next } tp { print; tp = 0 }'
}

# the long options a --help text lists (not $VARIABLES, not in prose)
long_options() {
	"$1" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}

# --- options --------------------------------------------------------------------
check_options() {
	prog=$1 page=$2 synopsis=$3
	opts=$(long_options "$prog") || { bad "$prog --help failed"; return; }
	[ -n "$opts" ] || { bad "$prog --help lists no long option"; return; }
	n=0 before=$fails
	for o in $opts; do
		n=$((n + 1))
		if ! tags "$page" OPTIONS | grep -q -- "$o\([^a-z0-9-]\|$\)"; then
			bad "$(basename "$page"): OPTIONS has no entry for $o (in $(basename "$prog") --help)"
		fi
		if [ "$synopsis" = yes ] &&
			! section "$page" SYNOPSIS | grep -q -- "$o\([^a-z0-9-]\|$\)"; then
			bad "$(basename "$page"): SYNOPSIS lacks $o (in $(basename "$prog") --help)"
		fi
	done
	[ $fails != $before ] ||
		echo "ok   $(basename "$page"): the $n long options of $(basename "$prog") --help"
}
check_options "$umirrord" "$src/docs/man/umirrord.8" yes
check_options "$umirrorctl" "$src/docs/man/umirrorctl.1" no

# --- invalidation reasons ---------------------------------------------------------
header=$src/libclient/include/umirror.h
reasons=$(awk '/^enum um_reason \{/ { on = 1; next } on && /^\};/ { exit }
	on { if (match($0, /UM_REASON_[A-Z_]+/)) print substr($0, RSTART, RLENGTH) }' "$header")
[ -n "$reasons" ] || bad "no enum um_reason values found in $header"
n=0 before=$fails
for r in $reasons; do
	n=$((n + 1))
	name=$(echo "${r#UM_REASON_}" | tr 'A-Z' 'a-z')
	plain "$src/docs/man/libumirror.3" | grep -q -- "$r\([^A-Z_]\|$\)" ||
		bad "libumirror.3 does not name $r"
	grep -q "= \"$name\"" "$src/proto/proto.c" ||
		bad "um_reason_str() (proto/proto.c) has no \"$name\" for $r"
	# an entry (.TP tag ".B name") in the list under the watch command
	section "$src/docs/man/umirrorctl.1" COMMANDS |
		awk '/^\.BR watch/ { on = 1 } on' | grep -qx "\.B $name" ||
		bad "umirrorctl.1: watch's list of reasons has no '$name' ($r)"
done
# the reasons userfaultfd has no event for: umirrord(8) says when they are seen
for name in migrate revalidate; do
	section "$src/docs/man/umirrord.8" "WHAT IS SEEN, WHEN" | grep -q "^\.BR* $name\>" ||
		bad "umirrord.8: WHAT IS SEEN, WHEN does not name the reason $name"
done
[ $fails != $before ] ||
	echo "ok   $n um_reason values in libumirror.3, proto.c and umirrorctl.1's watch"

# --- no seed references in product documents ------------------------------------
docs="$src/README.md $src/CONTRIBUTING.md $src/docs/*.md $src/docs/man/*.[0-9]
$src/libclient/include/umirror.h $src/proto/umirror_proto.h"
# shellcheck disable=SC2086 # the globs are meant
hits=$(grep -n -i -E 'seeds?[ _-]*[0-9]{3}|shared/seeds|seeds/' $docs 2>/dev/null)
if [ -n "$hits" ]; then
	echo "$hits"
	bad "the lines above refer to seeds: name the kernel documents (HMM," \
		"mmu_interval_notifier, Documentation/mm/hmm.rst) instead"
else
	echo "ok   no seed references in $(echo $docs | wc -w) product documents"
fi

# --- per-function pages (man 3 um_connect ...) -------------------------------------
# Every docs/man/um_*.3 documents the functions its NAME lists: each is
# exported by umirror.h, its SYNOPSIS prototype is the header's, and every
# errno the header's comment for it names appears in the page; the page has
# the sections a reader looks for.

# the prototype of exported function $2 in header $1, on one line, spaced
# the one way (no space after "(" or before "," ")" ";")
header_proto() {
	awk -v fn="$2" '
		/^UM_EXPORT / { on = index($0, " " fn "(") || index($0, "*" fn "("); text = "" }
		on { text = text " " $0; if ($0 ~ /;/) { print text; exit } }' "$1" | norm
}

# the kernel-doc comment (/** ... */) right before $2's declaration in $1
header_doc() {
	awk -v fn="$2" '
		/^\/\*\*/ { doc = ""; in_doc = 1 }
		in_doc { doc = doc "\n" $0 }
		/\*\// { in_doc = 0 }
		/^UM_EXPORT / && (index($0, " " fn "(") || index($0, "*" fn "(")) { print doc; exit }
		/^UM_EXPORT / { doc = "" }' "$1"
}

norm() {
	sed -e 's/UM_EXPORT //' -e 's/[[:space:]][[:space:]]*/ /g' -e 's/^ //' -e 's/ $//' \
	    -e 's/( /(/g' -e 's/ \([,);]\)/\1/g'
}

# the text of the SYNOPSIS of page $1: troff font requests' arguments joined
synopsis_text() {
	section "$1" SYNOPSIS | awk '
		/^\.(B|I|BI|IB|BR|RB|IR|RI)( |$)/ {
			line = $0; sub(/^\.[A-Z]+ ?/, "", line); out = ""; q = 0
			for (i = 1; i <= length(line); i++) {
				c = substr(line, i, 1)
				if (c == "\"") { q = !q; continue }
				if (c == " " && !q) continue
				out = out c
			}
			printf "%s ", out
		}' | norm
}

pages=$(ls "$src"/docs/man/um_*.3 2>/dev/null)
[ -n "$pages" ] || bad "no per-function man pages (docs/man/um_*.3)"
n=0 before=$fails
for page in $pages; do
	base=$(basename "$page" .3)
	names=$(section "$page" NAME | sed -n 's/ - .*//p' | tr ',' ' ')
	echo " $names " | grep -q " $base " || bad "$base.3: NAME does not list $base"
	for sec in SYNOPSIS DESCRIPTION "WAITS AND HOLDS" "RETURN VALUE" EXAMPLE "SEE ALSO"; do
		plain "$page" | grep -q "^\.SH \"*$sec\"*\$" || bad "$base.3: no section $sec"
	done
	syn=$(synopsis_text "$page")
	for fn in $names; do
		n=$((n + 1))
		proto=$(header_proto "$header" "$fn")
		if [ -z "$proto" ]; then
			bad "$base.3 documents $fn, which umirror.h does not export"
			continue
		fi
		case "$syn" in
		*"$proto"*) ;;
		*) bad "$base.3: SYNOPSIS lacks the header's '$proto'" ;;
		esac
		for e in $(header_doc "$header" "$fn" | grep -o -- '-E[A-Z0-9]*' | sort -u); do
			plain "$page" | grep -q -- "$e\\([^A-Z0-9]\\|\$\\)" ||
				bad "$base.3: umirror.h says $fn returns $e, the page does not"
		done
	done
done
[ $fails != $before ] ||
	echo "ok   $n functions in $(echo $pages | wc -w) pages: prototypes and errors as umirror.h says"

exit $status
