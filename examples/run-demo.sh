#!/usr/bin/env bash
# Start umirrord on a private socket, run the mirror_basic example against it,
# show what umirrorctl sees, and stop the daemon. Usage: run-demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
dir=$(mktemp -d /tmp/umirror-demo.XXXXXX)
sock=$dir/umirrord.sock
cleanup() {
    [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

"$build/daemon/umirrord" --socket "$sock" &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "run-demo: umirrord did not start" >&2; exit 1; }

export UMIRROR_SOCKET=$sock
"$build/cli/umirrorctl" status
echo
"$build/examples/mirror_basic"
