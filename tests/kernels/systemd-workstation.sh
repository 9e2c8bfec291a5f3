#!/bin/bash
# SPDX-License-Identifier: MIT
#
# systemd-workstation.sh BUILD_DIR
#
# umirror's systemd integration as a workstation uses it, under a real
# systemd as PID 1: run inside the VM of `tests/kernels/systemd-run.sh`
# (run-kernel.sh --systemd), never on a real machine: it installs BUILD_DIR
# into /usr, creates users, and stops, kills and hangs the daemon.
#
#   cmake --install BUILD_DIR --prefix /usr, systemd-sysusers and
#   systemd-tmpfiles for the shipped files, daemon-reload,
#   systemctl enable --now umirrord.socket; then
#   - the first connection starts umirrord.service (socket activation);
#   - Type=notify: active only once ready; StatusText follows the clients;
#   - a member of group umirror mirrors (examples/mirror_basic), a user
#     outside it is refused (EACCES on the socket);
#   - systemctl stop umirrord releases every client (-ENOTCONN) and their
#     writers keep running; the socket stays and activates a new daemon;
#   - SIGKILL: Restart= brings the daemon back and a client reconnects;
#   - the watchdog: the daemon pings (WatchdogTimestamp advances), and a
#     daemon that stops pinging (SIGSTOP) is killed and restarted;
#   - the daemon's log levels are journal priorities: a bad client is a
#     warning, a start-up error (bad option in a drop-in) is an error
#     `journalctl -u umirrord -p err` shows, info lines are neither;
#   - systemctl disable --now umirrord.socket removes the socket.
#
# Each check prints "ok: ..." or "FAIL: ..."; the last line counts them.
# Exit 0 when all passed, 1 on any FAIL, 77 when not in such a VM.
# shellcheck disable=SC2016 # the conditions given to check are eval'd when it runs
set -u

if [[ $# -ne 1 ]]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
# Only inside run-kernel.sh --systemd's VM (its results share is mounted)
if [[ $(cat /proc/1/comm 2>/dev/null) != systemd || ! -f /run/umk/config.sh ]]; then
	echo "SKIP: not in a tests/kernels VM with systemd as PID 1 (this script changes the system)"
	exit 77
fi
build=$(realpath -e "$1") || exit 2
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root"; exit 77; }

UNIT=umirrord.service
SOCK=/run/umirror/umirrord.sock
MEMBER=umtest   # in group umirror
OTHER=umother   # not in it
tmp=$(mktemp -d /tmp/sd-ws.XXXXXX)
chmod 755 "$tmp"
npass=0
nfail=0
bg_pids=()

ok() {
	echo "ok: $*"
	npass=$((npass + 1))
}
fail() {
	echo "FAIL: $*"
	nfail=$((nfail + 1))
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
prop() { systemctl show -P "$2" "$1"; }
# wait_for SECONDS COMMAND...: poll until COMMAND succeeds; a bound, not a
# speed test (TCG is slow and the machine shared)
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.5
	done
}
is_active() { [[ $(prop "$1" ActiveState) == active ]]; }
log_has() { journalctl -u "$UNIT" -o cat --no-pager "${@:2}" | grep -q -- "$1"; }
# signal SIG: send SIG to the daemon's main process (no main process: a
# FAIL, and never kill(0), which would hit this script's process group)
signal() {
	pid0=$(prop "$UNIT" MainPID)
	n0=$(prop "$UNIT" NRestarts)
	if [[ ! $pid0 -gt 1 ]]; then
		fail "no daemon to send SIG$1 to (MainPID '$pid0')"
		return 1
	fi
	kill -"$1" "$pid0"
}
# as USER CMD...: a login-less session of USER (supplementary groups set)
as() {
	local u=$1
	shift
	runuser -u "$u" -- "$@"
}
# start_client NAME USER MODE: sd_client in the background, output in tmp/NAME
start_client() {
	as "$2" "$build/tests/systemd/sd_client" "$3" >"$tmp/$1" 2>&1 &
	bg_pids+=($!)
	eval "pid_$1=$!"
}
client_ready() { grep -q '^mirroring' "$tmp/$1"; }
# client_result NAME: its exit status, its output indented
client_result() {
	local pid_var=pid_$1 rc=0
	wait "${!pid_var}" || rc=$?
	sed "s/^/    $1: /" "$tmp/$1"
	return "$rc"
}
cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$tmp" /run/systemd/system/umirrord.service.d
}
trap cleanup EXIT

for f in daemon/umirrord cli/umirrorctl examples/mirror_basic tests/systemd/sd_client; do
	[[ -x $build/$f ]] || { echo "FAIL: $build/$f not built"; exit 1; }
done

# --- install ------------------------------------------------------------------
cmake_bin=$(sed -n 's/^CMAKE_COMMAND:INTERNAL=//p' "$build/CMakeCache.txt")
if "${cmake_bin:-cmake}" --install "$build" --prefix /usr >"$tmp/install.log" 2>&1; then
	ok "cmake --install $build --prefix /usr"
else
	sed 's/^/    /' "$tmp/install.log"
	fail "cmake --install $build --prefix /usr"
fi
check "umirrord in /usr/sbin, umirrorctl in /usr/bin, and it runs" \
	eval '[[ -x /usr/sbin/umirrord ]] && /usr/bin/umirrorctl --help >/dev/null'
systemctl daemon-reload
frag=$(prop "$UNIT" FragmentPath)
exec_start=$(prop "$UNIT" ExecStart)
echo "    $UNIT: $frag; ExecStart: $exec_start"
check "systemd finds $UNIT and it starts /usr/sbin/umirrord" \
	eval '[[ -n $frag && $exec_start == *"path=/usr/sbin/umirrord "* ]]'
out=$(systemd-analyze verify "$frag" "$(prop umirrord.socket FragmentPath)" 2>&1)
[[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/    /'
check "systemd-analyze verify of the installed units: no complaint" test -z "$out"

# --- sysusers, tmpfiles --------------------------------------------------------
systemd-sysusers umirror.conf
check "systemd-sysusers umirror.conf: group umirror" getent group umirror
systemd-tmpfiles --create umirror.conf
st=$(stat -c '%a %U %G %F' /run/umirror 2>&1)
check "systemd-tmpfiles --create umirror.conf: /run/umirror $st" test "$st" = "755 root root directory"
useradd -m -G umirror "$MEMBER" && useradd -m "$OTHER"
echo "    users: $(id "$MEMBER"); $(id "$OTHER")"

# --- the socket ------------------------------------------------------------------
systemctl enable --now umirrord.socket 2>&1 | sed 's/^/    /'
check "umirrord.socket enabled and listening, the service not started" \
	eval '[[ $(systemctl is-enabled umirrord.socket) == enabled ]] &&
		is_active umirrord.socket && ! is_active $UNIT'
st=$(stat -c '%a %U %G %F' "$SOCK" 2>&1)
check "$SOCK: $st" test "$st" = "660 root umirror socket"

# --- activation, Type=notify ---------------------------------------------------------
if out=$(umirrorctl status 2>&1); then
	ok "first connection (umirrorctl status) answered: $(head -n 1 <<<"$out")"
else
	fail "first connection (umirrorctl status): $out"
fi
wait_for 60 is_active "$UNIT"
check "$UNIT started by the socket: $(prop "$UNIT" ActiveState)/$(prop "$UNIT" SubState)" \
	is_active "$UNIT"
check "the daemon adopted the socket systemd passed" \
	log_has "listening on $SOCK (socket-activated)"
check "Type=$(prop "$UNIT" Type), StatusText '$(prop "$UNIT" StatusText)'" \
	eval '[[ $(prop $UNIT Type) == notify && -n $(prop $UNIT StatusText) ]]'

# the unit's sandbox is in force, not silently dropped: no new privileges,
# seccomp filters (systemd installs one per setting, the daemon adds its
# allow-list), only the three capabilities (CAP_DAC_READ_SEARCH 2,
# CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21), its own mount and network namespaces
main=$(prop "$UNIT" MainPID)
status_field() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$main/status"; }
nnp=$(status_field NoNewPrivs)
seccomp=$(status_field Seccomp)
filters=$(status_field Seccomp_filters)
capbnd=$(status_field CapBnd)
own_ns() { [[ $(readlink "/proc/$main/ns/$1") != "$(readlink "/proc/1/ns/$1")" ]]; }
check "the sandbox holds: NoNewPrivs $nnp, Seccomp $seccomp ($filters filters), CapBnd $capbnd, own mount and network namespaces" \
	eval '[[ $nnp == 1 && $seccomp == 2 && $filters -ge 2 && $capbnd == 0000000000280004 ]] &&
		own_ns mnt && own_ns net'
echo "    $(systemd-analyze security "$UNIT" 2>&1 | grep -i 'overall exposure')"

# --- who may connect ---------------------------------------------------------------------
if as "$MEMBER" "$build/examples/mirror_basic" >"$tmp/mirror_basic" 2>&1 &&
	grep -q 'all checks passed' "$tmp/mirror_basic"; then
	ok "$MEMBER (group umirror) mirrors: examples/mirror_basic passed"
else
	sed 's/^/    /' "$tmp/mirror_basic"
	fail "$MEMBER (group umirror) runs examples/mirror_basic"
fi
out=$(as "$OTHER" umirrorctl status 2>&1)
rc=$?
check "$OTHER (not in group umirror) refused: exit $rc, '$out'" \
	eval '[[ $rc != 0 && $out == *"Permission denied"* ]]'
out=$(as "$OTHER" "$build/examples/mirror_basic" 2>&1)
check "$OTHER's mirror_basic refused too: '$(head -n 1 <<<"$out")'" \
	eval '[[ $out == *"Permission denied"* ]]'
out=$(as "$MEMBER" "$build/tests/systemd/sd_client" garbage 2>&1)
check "a client speaking garbage is hung up on: $out" eval '[[ $out == *"hung up"* ]]'

# --- stop releases every client ---------------------------------------------------------------
start_client stop1 "$MEMBER" hold
start_client stop2 root hold
if wait_for 120 client_ready stop1 && wait_for 120 client_ready stop2; then
	ok "two clients mirror (one $MEMBER, one root)"
else
	fail "two clients mirror"
fi
two_clients() { [[ $(prop "$UNIT" StatusText) == "2 clients, 2 intervals" ]]; }
wait_for 60 two_clients
check "StatusText follows them: '$(prop "$UNIT" StatusText)'" two_clients
systemctl stop "$UNIT"
check "systemctl stop: $(prop "$UNIT" ActiveState), result $(prop "$UNIT" Result), exit $(prop "$UNIT" ExecMainStatus)" \
	eval '! is_active $UNIT && [[ $(prop $UNIT Result) == success && $(prop $UNIT ExecMainStatus) == 0 ]]'
for c in stop1 stop2; do
	if client_result "$c" && grep -q 'released: Transport endpoint is not connected' "$tmp/$c" &&
		grep -q 'writer went on' "$tmp/$c"; then
		ok "$c released with ENOTCONN, its writer kept running"
	else
		fail "$c released with ENOTCONN, its writer kept running"
	fi
done
check "umirrord.socket still listening at $SOCK" eval 'is_active umirrord.socket && [[ -S $SOCK ]]'
umirrorctl status >/dev/null 2>&1
check "the next connection starts a new daemon" wait_for 60 is_active "$UNIT"

# --- SIGKILL: Restart= --------------------------------------------------------------------------
start_client kill1 "$MEMBER" reconnect
wait_for 120 client_ready kill1 || fail "client kill1 did not start mirroring"
signal KILL
new_daemon() {
	local p
	p=$(prop "$UNIT" MainPID)
	[[ $p != 0 && $p != "$pid0" ]] && is_active "$UNIT"
}
wait_for 120 new_daemon
check "SIGKILL of umirrord (pid $pid0): restarted as pid $(prop "$UNIT" MainPID) (Restart=$(prop "$UNIT" Restart)), NRestarts $n0 -> $(prop "$UNIT" NRestarts)" \
	eval 'new_daemon && [[ $(prop $UNIT NRestarts) == $((n0 + 1)) ]]'
if client_result kill1 && grep -q 'released: Transport endpoint is not connected' "$tmp/kill1" &&
	grep -q 'reconnected' "$tmp/kill1"; then
	ok "the client saw ENOTCONN, its writer kept running, it reconnected and mirrors again"
else
	fail "the client saw ENOTCONN, its writer kept running, it reconnected and mirrors again"
fi

# --- the watchdog ---------------------------------------------------------------------------------
wd=$(prop "$UNIT" WatchdogUSec)
t0=$(prop "$UNIT" WatchdogTimestampMonotonic)
pinged() { [[ $(prop "$UNIT" WatchdogTimestampMonotonic) != "$t0" ]]; }
check "WatchdogSec=$wd: the daemon pings (WatchdogTimestamp advances)" \
	eval '[[ $wd != 0 && $wd != infinity ]] && wait_for 120 pinged'
since=$(date '+%Y-%m-%d %H:%M:%S')
signal STOP
wait_for 300 new_daemon
check "a daemon that stops pinging (SIGSTOP, pid $pid0) is replaced: pid $(prop "$UNIT" MainPID), NRestarts $n0 -> $(prop "$UNIT" NRestarts)" \
	eval 'new_daemon && [[ $(prop $UNIT NRestarts) == $((n0 + 1)) ]]'
check "... by the watchdog ('Watchdog timeout' in its journal)" log_has "Watchdog timeout" --since "$since"
check "it serves again" eval 'umirrorctl status >/dev/null 2>&1'

# --- errors in the journal ------------------------------------------------------------------------
check "the garbage client's drop is a warning (journalctl -u umirrord -p warning)" \
	log_has "protocol error" -p warning
check "info lines are not (no 'listening on' at -p warning, but at -p info)" \
	eval '! log_has "listening on" -p warning && log_has "listening on" -p info'
# an administrator's mistake: a drop-in naming a group that does not exist
# (no restarts: one failure is enough to read)
mkdir -p /run/systemd/system/umirrord.service.d
cat >/run/systemd/system/umirrord.service.d/50-typo.conf <<'EOF'
[Service]
ExecStart=
ExecStart=/usr/sbin/umirrord --pfn-group no-such-group
Restart=no
EOF
systemctl daemon-reload
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl restart "$UNIT" >/dev/null 2>&1
failed_unit() { [[ $(prop "$UNIT" ActiveState) == failed ]]; }
wait_for 120 failed_unit
check "a bad option fails the service: $(prop "$UNIT" ActiveState), result $(prop "$UNIT" Result)" failed_unit
journalctl -u "$UNIT" -p err -o cat --since "$since" --no-pager | sed 's/^/    -p err: /'
check "journalctl -u umirrord -p err shows the daemon's reason" \
	log_has "no-such-group" -p err --since "$since"
rm -rf /run/systemd/system/umirrord.service.d
systemctl daemon-reload
systemctl reset-failed "$UNIT" umirrord.socket
systemctl restart umirrord.socket
umirrorctl status >/dev/null 2>&1
check "with the drop-in gone, the socket activates a daemon again" wait_for 60 is_active "$UNIT"

# --- disable ----------------------------------------------------------------------------------------
systemctl disable --now umirrord.socket 2>&1 | sed 's/^/    /'
systemctl stop "$UNIT"
check "systemctl disable --now umirrord.socket: not enabled, $SOCK gone" \
	eval '[[ $(systemctl is-enabled umirrord.socket) == disabled && ! -e $SOCK ]]'

if ((nfail)); then
	echo "---- journalctl -u $UNIT -u umirrord.socket (last 80 lines)"
	journalctl -u "$UNIT" -u umirrord.socket -n 80 -o short-monotonic --no-pager
fi
echo "systemd-workstation: $npass ok, $nfail FAIL"
((nfail == 0))
