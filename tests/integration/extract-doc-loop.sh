#!/bin/sh
# extract-doc-loop.sh - the usage loop as the documents show it, for
# test_doc_loop.c: README.md (the ```c block after the "usage-loop"
# marker), libumirror(3) (the .EX block after the "usage-loop" comment,
# troff escapes undone) and umirror.h (the tab-indented comment lines
# after the line naming test_doc_loop). The build runs it whenever one of
# them changes, so the test compiles what a reader copies; #line points
# compiler messages at the document.
# Usage: extract-doc-loop.sh SOURCE_DIR OUT_DIR
set -eu
src=$1
out=$2

extract() { # name file awk-program
	awk -v file="$2" "$3" "$2" > "$out/$1.tmp"
	if [ "$(wc -l < "$out/$1.tmp")" -lt 2 ]; then
		echo "extract-doc-loop.sh: no usage loop found in $2" >&2
		rm -f "$out/$1.tmp"
		exit 1
	fi
	mv "$out/$1.tmp" "$out/$1.inc"
}

extract doc_loop_readme "$src/README.md" '
	/^<!-- usage-loop/ { f = 1; next }
	f == 1 && /^```c$/ { f = 2; printf "#line %d \"%s\"\n", NR + 1, file; next }
	f == 2 && /^```$/ { exit }
	f == 2 { print }'

extract doc_loop_man "$src/docs/man/libumirror.3" '
	/^\.\\" usage-loop/ { f = 1; next }
	f == 1 && /^\.EX$/ { f = 2; printf "#line %d \"%s\"\n", NR + 1, file; next }
	f == 2 && /^\.EE$/ { exit }
	f == 2 {
		gsub(/\\-/, "-"); gsub(/\\\(aq/, "\047"); gsub(/\\&/, ""); gsub(/\\e/, "\\")
		print
	}'

extract doc_loop_header "$src/libclient/include/umirror.h" '
	/test_doc_loop/ { f = 1; next }
	f == 1 && /^ \*\t/ { f = 2; printf "#line %d \"%s\"\n", NR, file }
	f == 2 && !/^ \*\t/ { exit }
	f == 2 { sub(/^ \*\t/, ""); print }'
