#!/bin/sh
# check-man.sh VERSION PAGE... - every man page renders with man(1) without a
# single groff warning, and its .TH line names umirror VERSION.
# Exit 0 all good, 1 a page failed, 77 no man(1) to render with.
set -u
version=$1
shift
if ! command -v man >/dev/null 2>&1; then
	echo "check-man: man(1) not installed (apt-get install man-db): skipped"
	exit 77
fi
status=0
for page in "$@"; do
	bad=0
	warnings=$(MANWIDTH=80 man -l --warnings "$page" 2>&1 >/dev/null)
	if [ -n "$warnings" ]; then
		echo "FAIL $page: groff warnings:"
		echo "$warnings"
		bad=1
	fi
	if ! grep -q "^\.TH [A-Z_]* [0-9] \"[^\"]*\" \"umirror $version\"" "$page"; then
		echo "FAIL $page: .TH does not name umirror $version"
		bad=1
	fi
	lines=$(MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l)
	if [ "$lines" -lt 20 ]; then
		echo "FAIL $page: renders to $lines lines"
		bad=1
	fi
	if [ $bad -eq 0 ]; then
		echo "ok   $page ($lines lines)"
	else
		status=1
	fi
done
exit $status
