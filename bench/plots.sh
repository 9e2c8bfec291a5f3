#!/bin/sh
# SPDX-License-Identifier: MIT
#
# plots.sh - run umirror-bench and draw docs/b3_latency.svg (distribution
# of single first-write latencies, umirror and the mprotect+SIGSEGV
# baseline) and docs/b7_dispatch.svg (first-write invalidation cost
# against the number of intervals in one address space) with gnuplot.
#
# usage: bench/plots.sh BUILD_DIR [umirror-bench options, e.g. --only B3,B7]
# The bench's JSON lines are kept in BUILD_DIR/bench-results.json.
# Environment: PLOTS_ONLY=1 redraws from BUILD_DIR/benchdump without running
# the bench; B7_BEFORE=FILE adds a b7_dispatch.dat measured against another
# daemon (umirror-bench --only B7 --socket PATH with UMIRROR_BENCH_DUMP set)
# to the B7 plot, labelled with $B7_BEFORE_LABEL.
set -eu
build=${1:?usage: plots.sh BUILD_DIR [umirror-bench options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
docs="$here/../docs"
dump="$build/benchdump"
command -v gnuplot >/dev/null || { echo "plots.sh: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
mkdir -p "$dump"
if [ -z "${PLOTS_ONLY:-}" ]; then
	rm -f "$dump"/*.dat "$dump"/*.cdf
	UMIRROR_BENCH_DUMP="$dump" "$build/bench/umirror-bench" "$@" | tee "$build/bench-results.json"
fi

if [ -s "$dump/b3_lat.dat" ]; then
	n=$(wc -l <"$dump/b3_lat.dat")
	cut -d' ' -f1 "$dump/b3_lat.dat" | sort -g | awk -v n="$n" 'NR % int(n / 400 + 1) == 0 || NR == 1 || NR == n { print $1, NR / n }' >"$dump/b3_um.cdf"
	cut -d' ' -f2 "$dump/b3_lat.dat" | sort -g | awk -v n="$n" 'NR % int(n / 400 + 1) == 0 || NR == 1 || NR == n { print $1, NR / n }' >"$dump/b3_mp.cdf"
	gnuplot <<GP
set terminal svg size 720,420 dynamic font "sans,11"
set output "$docs/b3_latency.svg"
set title "B3: one first write, latency distribution ($n writes each)"
set xlabel "latency (us, log scale)"
set ylabel "fraction of writes <= x"
set logscale x
set grid
set key bottom right
plot "$dump/b3_um.cdf" using 1:2 with lines lw 2 title "umirror (uffd-wp, sync, callback in the event thread)", \
     "$dump/b3_mp.cdf" using 1:2 with lines lw 2 title "mprotect + SIGSEGV baseline"
GP
	echo "plots.sh: wrote $docs/b3_latency.svg" >&2
fi
if [ -s "$dump/b7_dispatch.dat" ]; then
	before=
	if [ -n "${B7_BEFORE:-}" ]; then
		label=${B7_BEFORE_LABEL:-before}
		before=", \"$B7_BEFORE\" using 1:2 with linespoints lw 2 dt 2 pt 6 title \"p50, $label\", \"$B7_BEFORE\" using 1:3 with linespoints lw 2 dt 2 pt 4 title \"p99, $label\""
	fi
	gnuplot <<GP
set terminal svg size 720,420 dynamic font "sans,11"
set output "$docs/b7_dispatch.svg"
set title "B7: first-write invalidation cost against intervals in one address space (pinned)"
set xlabel "intervals in the address space (log scale)"
set ylabel "us per first write"
set logscale x
set yrange [0:*]
set grid
set key top left
plot "$dump/b7_dispatch.dat" using 1:2 with linespoints lw 2 pt 7 title "p50", \
     "$dump/b7_dispatch.dat" using 1:3 with linespoints lw 2 pt 5 title "p99"$before
GP
	echo "plots.sh: wrote $docs/b7_dispatch.svg" >&2
fi
