#!/bin/bash
# SPDX-License-Identifier: MIT
#
# matrix.sh [OPTIONS] BUILD_DIR [KERNEL...] [CTEST_ARG...]
#
# Runs the ctest suite of an existing build directory on each KERNEL
# (default: Debian 12's 6.1 and 6.12, see run-kernel.sh for the forms a
# KERNEL takes) and prints one summary line per kernel. Arguments after the
# kernels, from the first one that starts with '-', go to ctest:
#
#   tests/kernels/matrix.sh /work/wt/foo/build
#   tests/kernels/matrix.sh /work/wt/foo/build 6.1 -R test_dirty
#   tests/kernels/matrix.sh --numa2 /work/wt/foo/build 6.12 -R placement
#
# With --systemd each kernel instead boots the host's userland under
# systemd as PID 1 and runs systemd-workstation.sh against the build (the
# units installed, socket-activated, stopped, killed and hung as a
# workstation would see them); no ctest arguments then:
#
#   tests/kernels/matrix.sh --systemd /work/wt/foo/build 6.12
#
# The randomized checker's steps per seed are capped under TCG
# ($UMIRROR_CHECK_MAX_STEPS, default 300, 0 for no cap): see check_env.
#
# Logs (console, ctest output, dmesg, detected features) stay in
# OUT/<kernel>/ (default BUILD_DIR/kernel-matrix).
# Exit: 0 when every kernel passed, 77 when no kernel could run, else 1.
set -euo pipefail

readonly ME=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
out=
timeout_s=${UMK_TIMEOUT:-1800}
run_args=()
systemd=0

usage() {
	cat <<EOF
Usage: $ME [OPTIONS] BUILD_DIR [KERNEL...] [CTEST_ARG...]

Run BUILD_DIR's ctest suite on each KERNEL (default: 6.1 6.12) under QEMU.

  --out DIR        logs in DIR/<kernel>/ (default BUILD_DIR/kernel-matrix)
  --timeout SEC    hard limit per kernel (default $timeout_s)
  --numa2          boot with two NUMA nodes
  --systemd        systemd as PID 1, run systemd-workstation.sh instead of ctest
  --run-arg ARG    pass ARG to run-kernel.sh (repeatable), e.g. --run-arg --ro
  -h, --help       this text
EOF
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--numa2) run_args+=(--numa2); shift ;;
	--systemd) systemd=1; shift ;;
	--run-arg) run_args+=("$2"); shift 2 ;;
	-h|--help) usage; exit 0 ;;
	-*) usage >&2; exit 2 ;;
	*) break ;;
	esac
done
[[ $# -ge 1 ]] || { usage >&2; exit 2; }
build=$(realpath -e "$1") || exit 2
shift
[[ -f $build/CTestTestfile.cmake ]] || { echo "$ME: $build is not a ctest build directory" >&2; exit 2; }
kernels=()
while [[ $# -gt 0 && $1 != -* ]]; do
	kernels+=("$1")
	shift
done
[[ ${#kernels[@]} -gt 0 ]] || kernels=(6.1 6.12)
ctest_args=("$@")
if [[ $systemd == 1 && ${#ctest_args[@]} -gt 0 ]]; then
	echo "$ME: --systemd takes no ctest arguments (${ctest_args[*]})" >&2
	exit 2
fi
out=${out:-$build/kernel-matrix}

# One line from ctest's per-test lines in output.log:
# "N tests: P passed, F failed, S skipped; failed: name(Status) ..."
summarize_ctest() {
	local log=$1
	sed -nE 's/^ *[0-9]+\/[0-9]+ +Test +#[0-9]+: ([^ ]+) .*(Passed|\*\*\*[A-Za-z]+).*/\1 \2/p' "$log" |
		awk '{ n++ }
		$2 == "Passed" { p++; next }
		$2 == "***Skipped" { s++; next }
		{ f++; sub(/^\*\*\*/, "", $2); names = names " " $1 "(" $2 ")" }
		END {
			printf "%d tests: %d passed, %d failed, %d skipped", n, p, f, s
			if (f) printf ";  failed:%s", names
			printf "\n"
		}'
}

# One line from systemd-workstation.sh's output: its count
summarize_workstation() {
	local last
	last=$(grep -E '^systemd-workstation: [0-9]+ ok, [0-9]+ FAIL$' "$1" | tail -n 1)
	if [[ -n $last ]]; then
		echo "${last#systemd-workstation: }"
	else
		echo "incomplete: $(grep -c '^ok: ' "$1") ok, $(grep -c '^FAIL: ' "$1") FAIL before it ended"
	fi
}

# Under TCG a step of the randomized checker (label random) takes 10-20
# times as long as natively: cap its steps per seed (UMIRROR_CHECK_MAX_STEPS,
# default 300 here; 0 = no cap) so that its three tests stay under three
# minutes per kernel (at 400 steps, on a loaded host: 176 s on 6.1, 45 s on
# 6.12; uncapped 2000: 826 s and 283 s). Natively they run their full budget.
check_env=()
if [[ ${UMK_ACCEL:-tcg} == tcg && ${UMIRROR_CHECK_MAX_STEPS:-300} != 0 ]]; then
	check_env=(--env "UMIRROR_CHECK_MAX_STEPS=${UMIRROR_CHECK_MAX_STEPS:-300}")
fi

summary=()
ran=0
failed=0
for k in "${kernels[@]}"; do
	dir=$out/$k
	rm -rf "$dir"
	mkdir -p "$dir"
	rc=0
	if [[ $systemd == 1 ]]; then
		echo "$ME: kernel $k: systemd as PID 1, systemd-workstation.sh (logs in $dir)" >&2
		"$here/run-kernel.sh" -q --systemd --out "$dir" --timeout "$timeout_s" --build "$build" \
			"${run_args[@]}" "$k" -- "$here/systemd-workstation.sh" "$build" \
			2>"$dir/runner.log" || rc=$?
	else
		echo "$ME: kernel $k: running ctest ${ctest_args[*]} (logs in $dir)" >&2
		"$here/run-kernel.sh" -q --out "$dir" --timeout "$timeout_s" --build "$build" \
			"${run_args[@]}" "${check_env[@]}" "$k" -- ctest --output-on-failure "${ctest_args[@]}" \
			2>"$dir/runner.log" || rc=$?
	fi
	sed 's/^/  /' "$dir/runner.log" >&2
	kname=$(cat "$dir/kernel" 2>/dev/null || echo "$k")
	if [[ $rc == 77 ]]; then
		line="$k: SKIP: $(grep -m1 SKIP "$dir/runner.log" || echo "prerequisite missing")"
	elif [[ ! -f $dir/output.log ]]; then
		line="$kname: NO RESULT (runner exit $rc, see $dir/runner.log and console.log)"
		ran=1
		failed=1
	else
		ran=1
		[[ $rc == 0 ]] || failed=1
		if [[ $systemd == 1 ]]; then
			line="$kname: systemd: $(summarize_workstation "$dir/output.log")"
			line+=" [test $(cat "$dir/command_s" 2>/dev/null || echo '?')s, boot $(cat "$dir/boot_s" 2>/dev/null || echo '?')s, exit $rc]"
		else
			line="$kname: $(summarize_ctest "$dir/output.log")"
			line+=" [suite $(cat "$dir/command_s" 2>/dev/null || echo '?')s, boot $(cat "$dir/boot_s" 2>/dev/null || echo '?')s, exit $rc]"
		fi
	fi
	summary+=("$line")
	if [[ $systemd == 1 && -f $dir/output.log ]]; then
		while IFS= read -r f; do
			summary+=("    $f")
		done < <(grep '^FAIL: ' "$dir/output.log")
	fi
	[[ -s $dir/features ]] && summary+=("    features: $(head -n 1 "$dir/features")")
done

echo "== kernel matrix: $build"
printf '%s\n' "${summary[@]}"
echo "== logs: $out/<kernel>/{output,console,dmesg$([[ $systemd == 1 ]] && echo ',journal')}.log"
[[ $ran == 1 ]] || exit 77
[[ $failed == 0 ]] || exit 1
