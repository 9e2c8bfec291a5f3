#!/bin/sh
# Every tracked .c/.h is as .clang-format says. The rules were written for
# clang-format 14 (Debian 12); other versions align comments differently,
# so they skip (77) rather than report changes nobody asked for.
# Usage: check-format.sh SOURCE_DIR
set -u
src=$1
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
	echo "skip: clang-format not installed (apt-get install clang-format)"
	exit 77
fi
ver=$("$cf" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$ver" != 14 ]; then
	echo "skip: $cf is version $ver; the style is checked with version 14"
	exit 77
fi
if ! git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	echo "skip: $src is not a git checkout (the file list comes from git ls-files)"
	exit 77
fi
cd "$src" || exit 1
out=$(git ls-files -z '*.[ch]' | xargs -0 "$cf" --dry-run -Werror 2>&1)
if [ -n "$out" ]; then
	printf '%s\n' "$out" | head -40
	echo "FAIL: files above differ from .clang-format; run: git ls-files '*.[ch]' | xargs $cf -i"
	exit 1
fi
echo "ok: $(git ls-files '*.[ch]' | wc -l) files formatted"
