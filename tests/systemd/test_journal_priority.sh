#!/bin/sh
# SPDX-License-Identifier: MIT
# The daemon's log levels become journal priorities: when stderr is the
# stream systemd connected to the journal ($JOURNAL_STREAM = its
# device:inode), each line starts with "<N>" (3 error, 4 warn, 6 info),
# which journald strips and records, so `journalctl -u umirrord -p err`
# shows errors. Without that variable, or when it names another file (a
# shell in ExecStart redirected stderr), lines stay as they are.
# Checked: a start-up error (an unknown --pfn-group), the info lines of a
# running daemon, and the warning about a client that speaks garbage.
#
# Usage: test_journal_priority.sh UMIRRORD SD_CLIENT
set -u
daemon=$1
client=$2

tmp_name=prio
# shellcheck source=tests/systemd/sdlib.sh
. "$(dirname "$0")/sdlib.sh"
# journal_stream FILE: the value systemd would give for FILE as stderr
journal_stream() { stat -c '%d:%i' "$1"; }

# 1. an error at start-up
: >"$tmp/err"
js=$(journal_stream "$tmp/err")
JOURNAL_STREAM=$js "$daemon" --pfn-group umirror-no-such-group 2>>"$tmp/err" &&
	fail "the daemon accepted a group that does not exist"
sed 's/^/  stderr: /' "$tmp/err"
grep -q "^<3>umirrord: error: --pfn-group 'umirror-no-such-group': no such group$" "$tmp/err" ||
	fail "the bad --pfn-group is not logged at priority 3 (err)"
echo "ok: start-up error at <3>"

# 2. not the journal: no prefix, whether unset or naming another file
: >"$tmp/plain"
: >"$tmp/other"
JOURNAL_STREAM=$(journal_stream "$tmp/other") "$daemon" --pfn-group umirror-no-such-group \
	2>>"$tmp/plain"
env -u JOURNAL_STREAM "$daemon" --pfn-group umirror-no-such-group 2>>"$tmp/plain"
if [ "$(grep -c "^umirrord: error: --pfn-group" "$tmp/plain")" != 2 ] || grep -q '^<' "$tmp/plain"; then
	fail "a prefix without the journal: $(cat "$tmp/plain")"
fi
echo "ok: no prefix when stderr is not the journal stream"

# 3. a running daemon: info lines, and a warning for a garbage client
: >"$tmp/run"
js=$(journal_stream "$tmp/run")
JOURNAL_STREAM=$js "$daemon" --socket "$tmp/s.sock" 2>>"$tmp/run" &
pid=$!
wait_for_socket "$tmp/s.sock" 100
out=$(UMIRROR_SOCKET=$tmp/s.sock "$client" garbage 2>&1) || fail "garbage client: $out"
kill -TERM "$pid"
wait "$pid"
pid=
sed 's/^/  stderr: /' "$tmp/run"
grep -q '^<6>umirrord: info: listening on ' "$tmp/run" || fail "'listening on' is not at <6>"
grep -q '^<4>umirrord: warn: dropping client [0-9]* (pid [0-9]*): protocol error' "$tmp/run" ||
	fail "the garbage client's drop is not a warning at <4>"
grep -v '^<[3467]>umirrord: ' "$tmp/run" && fail "lines above have no priority prefix"
echo "ok: info at <6>, the garbage client's drop at <4>"
exit 0
