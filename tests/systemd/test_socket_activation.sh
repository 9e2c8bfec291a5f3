#!/bin/sh
# SPDX-License-Identifier: MIT
# umirrord started by systemd-socket-activate, as umirrord.socket would
# start it: it adopts the passed SOCK_SEQPACKET socket (fd 3), serves
# umirrorctl and a full mirror (examples/mirror_basic: insert, snapshot,
# write/remove/remap/unmap invalidations), leaves the socket path alone on
# SIGTERM and exits 0. (test_listen_fds refuses wrong fds.)
#
# Usage: test_socket_activation.sh UMIRRORD UMIRRORCTL MIRROR_BASIC
set -u
daemon=$1
ctl=$2
example=$3

if ! command -v systemd-socket-activate >/dev/null 2>&1; then
	echo "SKIP: systemd-socket-activate is not installed (Debian: apt-get install systemd)"
	exit 77
fi
tmp_name=act
# shellcheck source=tests/systemd/sdlib.sh
. "$(dirname "$0")/sdlib.sh"

sock=$tmp/s.sock
# --socket names a path the daemon must NOT bind: the passed fd wins
systemd-socket-activate --seqpacket -l "$sock" \
	"$daemon" --socket "$tmp/not-this.sock" >"$tmp/log" 2>&1 &
pid=$!
wait_for_socket "$sock"

# the first connection makes systemd-socket-activate exec the daemon
out=$(UMIRROR_SOCKET=$sock "$ctl" status 2>&1) || fail "umirrorctl status: $out"
printf '%s\n' "$out" | sed 's/^/  status: /'
grep -q 'socket-activated' "$tmp/log" || fail "daemon did not say it was socket-activated"
[ -e "$tmp/not-this.sock" ] && fail "daemon bound --socket despite the passed fd"

UMIRROR_SOCKET=$sock "$example" >"$tmp/example" 2>&1 || {
	sed 's/^/  example: /' "$tmp/example"
	fail "mirror_basic against the socket-activated daemon"
}
grep -q 'all checks passed' "$tmp/example" || fail "mirror_basic did not pass its checks"
echo "ok: mirror_basic served by the socket-activated daemon"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "daemon exit status $rc after SIGTERM, want 0"
[ -S "$sock" ] || fail "daemon unlinked the socket-activated path (the socket unit owns it)"
echo "ok: SIGTERM -> exit 0, socket path kept"

exit 0
