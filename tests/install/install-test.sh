#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install-test.sh CMAKE BUILD_DIR SOURCE_DIR CC VERSION
#
# What a user and a distribution do with an install:
#  1. `cmake --install BUILD_DIR --prefix P` writes nothing outside P: every
#     file (systemd units, sysusers.d, tmpfiles.d included) lands under P.
#     The install gets a DESTDIR so that a regression writes into the
#     scratch tree, never into the machine running the test.
#  2. The installed umirrord.service's ExecStart names the umirrord that
#     same install put under P, and the installed umirrorctl runs without
#     LD_LIBRARY_PATH or ldconfig (its RUNPATH finds the installed library).
#  3. The same without DESTDIR, as a user types it.
#  4. `--prefix /usr` (what a systemd machine's own tree needs, and the
#     systemd VM test uses) puts the units into /usr/lib/systemd/system,
#     which systemd reads, with ExecStart=/usr/sbin/umirrord.
#  5. UMIRROR_SYSTEMD_SYSTEM_DIRS=ON (configure only) installs the units
#     where systemd.pc says with prefix /usr, and still under P otherwise.
#  6. consumer.c is built against the installed tree only, once with
#     pkg-config and once with find_package(umirror CONFIG), and both run
#     against the installed libumirror.so.0.
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
# every `cmake --install` rewrites BUILD_DIR/install_manifest.txt: keep the
# user's own (the list of what their real install wrote)
manifest=$build/install_manifest.txt
if [ -f "$manifest" ]; then
	cp -p "$manifest" "$tmp/manifest.saved"
	trap 'cp -p "$tmp/manifest.saved" "$manifest"; rm -rf "$tmp"' EXIT
else
	trap 'rm -f "$manifest"; rm -rf "$tmp"' EXIT
fi
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

# --- 1. nothing outside the prefix --------------------------------------------
# (directories too: an empty /lib/systemd/system created outside counts)
(cd "$stage" && find . -mindepth 1 \( -type f -o -type l -o -type d \) -print) |
	sed 's|^\.||' | while read -r f; do
	case $f in
	"$prefix" | "$prefix"/*) ;;
	*) case $prefix in "$f"/*) ;; *) echo "$f" ;; esac ;;
	esac
done >"$tmp/outside"
if [ -s "$tmp/outside" ]; then
	cat "$tmp/outside"
	fail "cmake --install --prefix $prefix wrote the paths above outside the prefix"
fi
n=$(find "$root" -type f | wc -l)
echo "ok   all $n installed files are under the prefix"

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
vheader=$(at "$includedir" umirror_version.h)
grep -q "^#define UMIRROR_VERSION_STRING \"$version\"" "$vheader" ||
	fail "$vheader: not installed, or not version $version"
for page in man1/umirrorctl.1 man3/libumirror.3 man8/umirrord.8; do
	[ -f "$(at "$mandir" "$page")" ] || fail "man page $page not installed"
done
[ "$(cat "$(at "$mandir" man3/um_connect.3)")" = ".so man3/libumirror.3" ] ||
	fail "man3/um_connect.3 is not a .so link to libumirror.3"
MANPATH=$(at "$mandir" "") man -w um_range_snapshot >/dev/null 2>&1 ||
	! command -v man >/dev/null || fail "man -w um_range_snapshot: not found in the tree"

# --- 2. the units name what was installed with them; umirrorctl runs ----------
# check_tree STAGE PREFIX: the units, sysusers.d and tmpfiles.d files are in
# PREFIX/lib/..., and the service's ExecStart is STAGE's umirrord at PREFIX
check_tree() {
	st=$1 pfx=$2
	for f in "$topsrc"/systemd/*.service "$topsrc"/systemd/*.socket; do
		[ -e "$f" ] || continue
		[ -f "$st$pfx/lib/systemd/system/$(basename "$f")" ] ||
			fail "$(basename "$f") not installed into $pfx/lib/systemd/system"
	done
	for d in sysusers.d tmpfiles.d; do
		[ -f "$st$pfx/lib/$d/umirror.conf" ] || fail "umirror.conf not installed into $pfx/lib/$d"
	done
	svc=$st$pfx/lib/systemd/system/umirrord.service
	exec_start=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$svc")
	[ "$(printf '%s\n' "$exec_start" | wc -l)" = 1 ] && [ -n "$exec_start" ] ||
		fail "$svc: want one ExecStart line, have '$exec_start'"
	case $exec_start in
	"$pfx"/*) ;;
	*) fail "$svc: ExecStart=$exec_start is not under the prefix $pfx" ;;
	esac
	case $sbindir in
	/*) want=$sbindir/umirrord ;;
	*) want=$pfx/$sbindir/umirrord ;;
	esac
	[ "$exec_start" = "$want" ] ||
		fail "$svc: ExecStart=$exec_start, but this install put umirrord at $want"
	[ -x "$st$exec_start" ] || fail "$svc: ExecStart=$exec_start: no such installed program"
	echo "ok   $pfx: units in $pfx/lib/systemd/system, ExecStart=$exec_start (installed)"
}
check_tree "$stage" "$prefix"

# run_ctl CTL: the installed umirrorctl, without any loader help
run_ctl() {
	ctl=$1
	env -u LD_LIBRARY_PATH -u LD_PRELOAD "$ctl" --help >"$tmp/ctl.out" 2>"$tmp/ctl.err" ||
		{ cat "$tmp/ctl.err"; fail "$ctl --help exited with $?"; }
	grep -q '^Usage: umirrorctl ' "$tmp/ctl.out" || fail "$ctl --help: no usage on stdout"
	env -u LD_LIBRARY_PATH -u LD_PRELOAD "$ctl" --version >"$tmp/ctl.out" 2>"$tmp/ctl.err" ||
		{ cat "$tmp/ctl.err"; fail "$ctl --version exited with $?"; }
	[ "$(cat "$tmp/ctl.out")" = "umirrorctl $version" ] ||
		fail "$ctl --version: '$(cat "$tmp/ctl.out")'"
	echo "ok   $ctl --help and --version run without LD_LIBRARY_PATH"
}
ctl=$(at "$bindir" umirrorctl)
loaded=$(env -u LD_LIBRARY_PATH ldd "$ctl" | sed -n 's/.*libumirror\.so\.0 => \(.*\) (0x.*/\1/p')
[ -n "$loaded" ] && [ "$(realpath "$loaded")" = "$(realpath "$lib")" ] ||
	fail "$ctl does not load the installed libumirror: $(env -u LD_LIBRARY_PATH ldd "$ctl")"
run_ctl "$ctl"

# --- 3. as a user types it: no DESTDIR -----------------------------------------
# Safe now: part 1 proved this install writes only under its prefix.
plain=$tmp/plain
echo "+ $cmake --install $build --prefix $plain"
"$cmake" --install "$build" --prefix "$plain" >"$tmp/plain.log" ||
	{ cat "$tmp/plain.log"; fail "cmake --install --prefix $plain"; }
check_tree "" "$plain"
case $bindir in /*) ;; *) run_ctl "$plain/$bindir/umirrorctl" ;; esac

# --- 4. --prefix /usr: where systemd reads units ------------------------------
usr=$tmp/usr-stage
echo "+ DESTDIR=$usr $cmake --install $build --prefix /usr"
DESTDIR=$usr "$cmake" --install "$build" --prefix /usr >"$tmp/usr.log" ||
	{ cat "$tmp/usr.log"; fail "cmake --install --prefix /usr"; }
check_tree "$usr" /usr
[ "$(sed -n 's/^ExecStart=//p' "$usr/usr/lib/systemd/system/umirrord.service")" = \
	/usr/sbin/umirrord ] || fail "--prefix /usr: ExecStart is not /usr/sbin/umirrord"
if command -v systemd-analyze >/dev/null 2>&1; then
	systemd-analyze unit-paths 2>/dev/null | grep -qx '/usr/lib/systemd/system' ||
		fail "systemd does not read /usr/lib/systemd/system: $(systemd-analyze unit-paths)"
	echo "ok   systemd reads /usr/lib/systemd/system"
fi

# --- 5. UMIRROR_SYSTEMD_SYSTEM_DIRS: configure a scratch tree, install its units
sysdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
if [ -n "$sysdir" ]; then
	"$cmake" -S "$topsrc" -B "$tmp/sys-build" -DCMAKE_INSTALL_PREFIX=/usr \
		-DUMIRROR_SYSTEMD_SYSTEM_DIRS=ON -DBUILD_TESTING=OFF >"$tmp/sys.log" 2>&1 ||
		{ cat "$tmp/sys.log"; fail "configure with UMIRROR_SYSTEMD_SYSTEM_DIRS=ON"; }
	DESTDIR=$tmp/sys-usr "$cmake" -DCMAKE_INSTALL_PREFIX=/usr \
		-P "$tmp/sys-build/systemd/cmake_install.cmake" >>"$tmp/sys.log" 2>&1 ||
		{ cat "$tmp/sys.log"; fail "install the units with UMIRROR_SYSTEMD_SYSTEM_DIRS=ON"; }
	[ -f "$tmp/sys-usr$sysdir/umirrord.service" ] ||
		fail "UMIRROR_SYSTEMD_SYSTEM_DIRS=ON, prefix /usr: no umirrord.service in $sysdir"
	grep -qx 'ExecStart=/usr/sbin/umirrord' "$tmp/sys-usr$sysdir/umirrord.service" ||
		fail "UMIRROR_SYSTEMD_SYSTEM_DIRS=ON: ExecStart is not /usr/sbin/umirrord"
	DESTDIR=$tmp/sys-p "$cmake" -DCMAKE_INSTALL_PREFIX="$prefix" \
		-P "$tmp/sys-build/systemd/cmake_install.cmake" >>"$tmp/sys.log" 2>&1 ||
		{ cat "$tmp/sys.log"; fail "install the units with UMIRROR_SYSTEMD_SYSTEM_DIRS=ON"; }
	out=$(cd "$tmp/sys-p" && find . -type f | grep -v "^\.$prefix/" || true)
	[ -z "$out" ] || fail "UMIRROR_SYSTEMD_SYSTEM_DIRS=ON, prefix $prefix: wrote $out"
	echo "ok   UMIRROR_SYSTEMD_SYSTEM_DIRS=ON: $sysdir with prefix /usr, else under the prefix"
else
	echo "note: no systemd.pc, UMIRROR_SYSTEMD_SYSTEM_DIRS not checked"
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

# --- 6. the consumer, twice ------------------------------------------------------
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
