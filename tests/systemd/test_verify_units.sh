#!/bin/sh
# SPDX-License-Identifier: MIT
# systemd/ as systemd reads it: `systemd-analyze verify` on both units (the
# service's ExecStart pointed at the build's daemon, which verify checks
# exists), then sysusers.d and tmpfiles.d applied to a scratch root.
# Any complaint fails the test.
#
# Usage: test_verify_units.sh UNIT_DIR UMIRRORD
set -u
units=$1
daemon=$2

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze is not installed (Debian: apt-get install systemd)"
	exit 77
fi
tmp=$(mktemp -d /tmp/umirror-sd-verify-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

sed "s#^ExecStart=/usr/sbin/umirrord\( \|\$\)#ExecStart=$daemon\1#" "$units/umirrord.service" \
	>"$tmp/umirrord.service" || fail "cannot copy umirrord.service"
grep -qx "ExecStart=$daemon \$UMIRRORD_OPTS" "$tmp/umirrord.service" ||
	fail "umirrord.service has no 'ExecStart=/usr/sbin/umirrord \$UMIRRORD_OPTS' line"
# options come from an optional environment file, as Debian's units do
grep -qx 'EnvironmentFile=-/etc/default/umirrord' "$units/umirrord.service" ||
	fail "umirrord.service has no optional EnvironmentFile=-/etc/default/umirrord"
cp "$units/umirrord.socket" "$tmp/" || fail "cannot copy umirrord.socket"

# --man=no: Documentation=man:umirrord(8) is installed by `cmake --install`,
# it is not on this machine's MANPATH while testing a build tree.
out=$(cd "$tmp" && systemd-analyze verify --man=no ./umirrord.socket ./umirrord.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	printf '%s\n' "$out"
	fail "systemd-analyze verify: exit $rc, output above"
fi
echo "ok: systemd-analyze verify umirrord.socket umirrord.service"

# the socket unit must be the daemon's kind of socket, at the documented place
grep -qx 'ListenSequentialPacket=/run/umirror/umirrord.sock' "$units/umirrord.socket" ||
	fail "umirrord.socket does not listen (seqpacket) on /run/umirror/umirrord.sock"

if command -v systemd-sysusers >/dev/null 2>&1; then
	mkdir -p "$tmp/root/etc"
	out=$(systemd-sysusers --root="$tmp/root" "$units/umirror.sysusers" 2>&1) ||
		fail "systemd-sysusers: $out"
	grep -q '^umirror:x:[0-9]*:' "$tmp/root/etc/group" ||
		fail "sysusers did not create the umirror group"
	echo "ok: sysusers creates group umirror"
else
	echo "note: systemd-sysusers absent, umirror.sysusers not checked"
fi

if command -v systemd-tmpfiles >/dev/null 2>&1; then
	out=$(systemd-tmpfiles --root="$tmp/root" --create "$units/umirror.tmpfiles" 2>&1) ||
		fail "systemd-tmpfiles: $out"
	[ -n "$out" ] && fail "systemd-tmpfiles complained: $out"
	st=$(stat -c '%a %u %g %F' "$tmp/root/run/umirror") || fail "no /run/umirror created"
	[ "$st" = "755 0 0 directory" ] || fail "/run/umirror is '$st', want '755 0 0 directory'"
	echo "ok: tmpfiles creates /run/umirror 0755 root root"
else
	echo "note: systemd-tmpfiles absent, umirror.tmpfiles not checked"
fi

# the udev rule is opt-in and must say so; it matches the device node only
rules="$units/60-umirror-userfaultfd.rules"
grep -qi 'opt-in' "$rules" || fail "$rules does not say it is opt-in"
[ "$(grep -v '^#' "$rules" | grep -c .)" = 1 ] || fail "$rules: want exactly one rule"
grep -qx 'KERNEL=="userfaultfd", SUBSYSTEM=="misc", GROUP="umirror", MODE="0660"' "$rules" ||
	fail "$rules: unexpected rule"
echo "ok: udev rule"
exit 0
