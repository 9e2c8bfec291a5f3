# shellcheck shell=sh
# SPDX-License-Identifier: MIT
# Sourced by the shell tests here, after setting $tmp_name:
#   tmp          a scratch directory, removed on exit
#   pid          set it to a started daemon's pid: killed on exit
#   fail MSG     prints FAIL: MSG (and $tmp/log, where a test keeps the
#                daemon's output) and exits 1
#   wait_for_socket PATH [TENTHS_OF_S]   fails unless PATH is a socket in time
tmp=$(mktemp -d "/tmp/umirror-sd-${tmp_name:-test}-XXXXXX") || exit 1
pid=
# shellcheck disable=SC2317 # called by the trap
sdlib_cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap sdlib_cleanup EXIT
fail() {
	echo "FAIL: $*"
	[ -f "$tmp/log" ] && sed 's/^/  daemon: /' "$tmp/log"
	exit 1
}
wait_for_socket() {
	i=0
	limit=$(( ${2:-20} * 10 ))
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		[ $i -gt "$limit" ] && fail "no socket at $1 after $(( limit / 100 )) s"
		sleep 0.01
	done
}
