#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install-test.sh CMAKE BUILD_DIR SOURCE_DIR CC VERSION
#
# What a distribution packages: `cmake --install BUILD_DIR --prefix P` into a
# temporary tree, then consumer.c is built against that tree only, once with
# pkg-config and once with find_package(umirror CONFIG), and both binaries
# run against the installed libumirror.so.0.
#
# The install also gets DESTDIR: systemd.pc names absolute directories
# (/lib/systemd/system) that --prefix does not move, and a test must not
# write units into the machine it runs on. The prefix tree is then
# $DESTDIR$P; umirror.pc and the CMake package are relocatable, so they are
# used from there as they are.
#
# Environment: UM_CONSUMER_CFLAGS (e.g. -fsanitize=... for an ASan build),
# UM_LIBDIR, UM_INCLUDEDIR, UM_BINDIR, UM_SBINDIR, UM_MANDIR (the
# CMAKE_INSTALL_* directories, relative to the prefix or absolute).
# Exit 0 pass, 1 fail, 77 skip (no pkg-config).
set -eu

if [ $# -ne 5 ]; then
	echo "usage: $0 CMAKE BUILD_DIR SOURCE_DIR CC VERSION" >&2
	exit 1
fi
cmake=$1 build=$2 src=$3 cc=$4 version=$5
libdir=${UM_LIBDIR:-lib} includedir=${UM_INCLUDEDIR:-include}
bindir=${UM_BINDIR:-bin} sbindir=${UM_SBINDIR:-sbin} mandir=${UM_MANDIR:-share/man}
cflags_extra=${UM_CONSUMER_CFLAGS:-}
topsrc=$(cd "$src/../.." && pwd)

if ! command -v pkg-config >/dev/null 2>&1; then
	echo "SKIP: pkg-config not installed"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/umirror-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
stage=$tmp/stage
prefix=$tmp/prefix
root=$stage$prefix

fail() {
	echo "FAIL: $*"
	exit 1
}

# an installed path: relative directories live under the prefix
at() {
	case $1 in
	/*) echo "$stage$1/$2" ;;
	*) echo "$root/$1/$2" ;;
	esac
}

echo "+ DESTDIR=$stage $cmake --install $build --prefix $prefix"
DESTDIR=$stage "$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
	{ cat "$tmp/install.log"; fail "cmake --install"; }

# --- the layout --------------------------------------------------------------
for f in "$(at "$sbindir" umirrord)" "$(at "$bindir" umirrorctl)"; do
	[ -x "$f" ] || fail "$f: not installed or not executable"
done
lib=$(at "$libdir" "libumirror.so.$version")
[ -f "$lib" ] || fail "$lib not installed"
[ "$(readlink "$(at "$libdir" libumirror.so.0)")" = "libumirror.so.$version" ] ||
	fail "libumirror.so.0 is not a link to libumirror.so.$version"
[ "$(readlink "$(at "$libdir" libumirror.so)")" = "libumirror.so.0" ] ||
	fail "libumirror.so (the development link) is not a link to libumirror.so.0"
header=$(at "$includedir" umirror.h)
cmp -s "$header" "$topsrc/libclient/include/umirror.h" || fail "$header differs from the source"
for page in man1/umirrorctl.1 man3/libumirror.3 man8/umirrord.8; do
	[ -f "$(at "$mandir" "$page")" ] || fail "man page $page not installed"
done
[ "$(cat "$(at "$mandir" man3/um_connect.3)")" = ".so man3/libumirror.3" ] ||
	fail "man3/um_connect.3 is not a .so link to libumirror.3"
MANPATH=$(at "$mandir" "") man -w um_range_snapshot >/dev/null 2>&1 ||
	! command -v man >/dev/null || fail "man -w um_range_snapshot: not found in the tree"
# every unit and systemd file in the source tree lands somewhere in the tree
for f in "$topsrc"/systemd/*.service "$topsrc"/systemd/*.socket; do
	[ -e "$f" ] || continue
	name=$(basename "$f")
	[ -n "$(find "$stage" -name "$name" -path '*/systemd/system/*')" ] ||
		fail "$name not installed into a systemd/system directory"
done
# the service starts the umirrord this install put in place: the prefix
# given to `cmake --install`, not the one configured
svc=$(find "$stage" -name umirrord.service -path '*/systemd/system/*' | head -n 1)
case $sbindir in
/*) want=ExecStart=$sbindir/umirrord ;;
*) want=ExecStart=$prefix/$sbindir/umirrord ;;
esac
if [ -n "$svc" ] && ! grep -qx "$want" "$svc"; then
	fail "$svc: '$(grep '^ExecStart=' "$svc")', want '$want'"
fi

# --- the ABI: soname, and exactly the header's functions at UMIRROR_0.1 -------
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libumirror.so.0 ] || fail "SONAME is '$soname', want libumirror.so.0"
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sort >"$tmp/exported"
[ -s "$tmp/exported" ] || fail "no exported symbols"
if grep -v '^um_[a-z0-9_]*@@UMIRROR_0\.1$' "$tmp/exported"; then
	fail "symbols above are not um_* at UMIRROR_0.1"
fi
sed 's/@@.*//' "$tmp/exported" >"$tmp/exported.names"
grep -o '^UM_EXPORT [^(]*(' "$header" | sed 's/.*[ *]\(um_[a-z0-9_]*\)($/\1/' | sort \
	>"$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported.names"; then
	fail "exported symbols differ from the header's UM_EXPORT functions (- header, + library)"
fi
echo "ok   layout; SONAME $soname; $(wc -l <"$tmp/exported") symbols, all um_*@@UMIRROR_0.1"

# --- the consumer, twice ------------------------------------------------------
# expected output: what the installed header and library must say
expect() {
	out=$1
	[ "$(sed -n 1p "$out")" = "version $version" ] || fail "$out: line 1: $(sed -n 1p "$out")"
	sed -n 2p "$out" | grep -Eq '^connect -[0-9]+ No such file or directory$' ||
		fail "$out: line 2 (want -ENOENT): $(sed -n 2p "$out")"
	[ "$(sed -n 3p "$out")" = "reason write" ] || fail "$out: line 3: $(sed -n 3p "$out")"
	[ "$(wc -l <"$out")" -eq 3 ] || fail "$out: $(wc -l <"$out") lines, want 3"
}

# run CONSUMER NAME: against the installed library only, on a socket that
# cannot exist (its directory does not)
run() {
	bin=$1 name=$2
	ldd_line=$(LD_LIBRARY_PATH=$(dirname "$lib") ldd "$bin" | grep 'libumirror\.so\.0') ||
		fail "$name: not linked with libumirror.so.0"
	case $ldd_line in
	*"=> $(dirname "$lib")/libumirror.so.0 "*) ;;
	*) fail "$name: resolves $ldd_line, not the installed library" ;;
	esac
	LD_LIBRARY_PATH=$(dirname "$lib") "$bin" "$tmp/no-such-dir/umirrord.sock" \
		>"$tmp/$name.out" || fail "$name exited with $?"
	expect "$tmp/$name.out"
	echo "ok   $name: $(tr '\n' ';' <"$tmp/$name.out")"
}

# 1. pkg-config
PKG_CONFIG_PATH=$(dirname "$(at "$libdir" pkgconfig/umirror.pc)")
export PKG_CONFIG_PATH
[ "$(pkg-config --modversion umirror)" = "$version" ] ||
	fail "pkg-config --modversion umirror: $(pkg-config --modversion umirror 2>&1)"
pc_flags=$(pkg-config --cflags --libs umirror)
echo "+ $cc $cflags_extra -std=c11 -Wall -Wextra -Werror -pedantic consumer.c $pc_flags"
# shellcheck disable=SC2086 # the flags are words
"$cc" $cflags_extra -std=c11 -Wall -Wextra -Werror -pedantic -o "$tmp/consumer-pc" \
	"$src/consumer.c" $pc_flags || fail "build with pkg-config"
# shellcheck disable=SC2086
"$cc" $pc_flags -M "$src/consumer.c" >"$tmp/deps"
# the make rule lists the headers, separated by blanks and "\" newlines
# shellcheck disable=SC1003 # tr's '\\' is one backslash
used=$(tr -s ' \\' '\n' <"$tmp/deps" | grep '/umirror\.h$' | head -n 1)
if [ -z "$used" ] || [ "$(realpath "$used")" != "$(realpath "$header")" ]; then
	fail "pkg-config build used '$used', not the installed $header"
fi
run "$tmp/consumer-pc" consumer-pc

# 2. find_package(umirror CONFIG)
if grep -rq 'um_proto' "$(at "$libdir" cmake/umirror)"; then
	fail "the CMake export names the private um_proto library"
fi
mkdir "$tmp/cm" "$tmp/cm-build"
cat >"$tmp/cm/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(umirror_consumer C)
find_package(umirror $version CONFIG REQUIRED)
add_executable(consumer "$src/consumer.c")
target_link_libraries(consumer PRIVATE umirror::umirror)
EOF
echo "+ $cmake -S $tmp/cm -B $tmp/cm-build -DCMAKE_PREFIX_PATH=$root && $cmake --build $tmp/cm-build"
"$cmake" -S "$tmp/cm" -B "$tmp/cm-build" -DCMAKE_PREFIX_PATH="$root" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$cflags_extra -Wall -Wextra -Werror" \
	-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$tmp/cm.log" 2>&1 ||
	{ cat "$tmp/cm.log"; fail "configure with find_package"; }
found=$(sed -n 's/^umirror_DIR:PATH=//p' "$tmp/cm-build/CMakeCache.txt")
[ "$(realpath "$found")" = "$(realpath "$(at "$libdir" cmake/umirror)")" ] ||
	fail "find_package found umirror in '$found', not in the installed tree"
"$cmake" --build "$tmp/cm-build" >"$tmp/cm-build.log" 2>&1 ||
	{ cat "$tmp/cm-build.log"; fail "build with find_package"; }
run "$tmp/cm-build/consumer" consumer-cmake

echo "PASS"
