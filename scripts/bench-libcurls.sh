#!/usr/bin/env bash
# Compares the system's libcurl with libcurl 8 from bookworm-backports
# (scripts/curl8.sh) on one endpoint: the component (callback form, 64 in
# flight) and the plain libcurl client (8 and 64 transfers), at 2 KiB,
# 64 KiB and 1 MiB. The same binaries run on both libcurls, alternately,
# seconds apart, so both see the same machine; each cell is the median of
# ROUNDS x 5 runs of `pw-bench --single`: profiles/s, and CPU seconds (user
# + sys of the sending process) per 1000 profiles, which moves less than
# the rate when other work shares the machine. Prints markdown tables.
#
# usage: scripts/bench-libcurls.sh [--build DIR] [--seconds S] [--rounds N]
#                                  [--profiles DIR] [--port BASE]
#   --seconds S  length of one run (default 1)
#   --rounds N   alternations per cell (default 2)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-bench"
seconds=1
rounds=2
profiles=""
port=18280
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build="$2"; shift ;;
	--seconds) seconds="$2"; shift ;;
	--rounds) rounds="$2"; shift ;;
	--profiles) profiles="$2"; shift ;;
	--port) port="$2"; shift ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) echo "bench-libcurls.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ ! -d "$build" ]; then
	meson setup "$build" "$root" --buildtype=release >/dev/null
fi
meson compile -C "$build" pw-bench pw-bench-recv pyroscope_write >/dev/null
libdir="$("$root/scripts/curl8.sh" --quiet)"
v8="$(LD_LIBRARY_PATH="$libdir" "$root/build-curl8/curl-version")"
vsys="$("$root/build-curl8/curl-version")"

tmp="$(mktemp -d)"
recv_pid=""
cleanup() {
	[ -n "$recv_pid" ] && { kill "$recv_pid" 2>/dev/null || true; wait "$recv_pid" 2>/dev/null || true; }
	rm -rf "$tmp"
}
trap cleanup EXIT
"$build/bench/pw-bench-recv" -p "$port" -n 1 >"$tmp/recv.log" 2>&1 &
recv_pid=$!
for _ in $(seq 50); do
	grep -q listening "$tmp/recv.log" 2>/dev/null && break
	sleep 0.05
done
grep -q listening "$tmp/recv.log" || { cat "$tmp/recv.log" >&2; exit 1; }

args=(--plugin "$build/pyroscope_write.so" --port "$port" --seconds "$seconds")
[ -n "$profiles" ] && args+=(--profiles "$profiles")

# One `--single` invocation (5 runs); appends each run's rate and CPU per
# 1000 profiles to a file.
single() { # LIB KIND SIZE CONC
	local envs=(env)
	[ "$1" = 8 ] && envs=(env "LD_LIBRARY_PATH=$libdir")
	"${envs[@]}" "$build/bench/pw-bench" "${args[@]}" --single "$2,1,$3,$4" |
		sed -n 's/.*: \([0-9]*\) profiles\/s, \([0-9.na]*\) CPU.*/\1 \2/p' >>"$tmp/$1-$2-$3-$4"
}
median() { # FILE COLUMN
	awk -v c="$2" '{ print $c }' "$1" | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "- load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cells=("cb 64" "plain 8" "plain 64")
for size in 0 1 2; do
	for _ in $(seq "$rounds"); do
		for cell in "${cells[@]}"; do
			for lib in sys 8; do
				single "$lib" "${cell% *}" "$size" "${cell#* }"
			done
		done
	done
done
echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
names=("2 KiB" "64 KiB" "1 MiB")
table() { # COLUMN FORMAT: 1 profiles/s (ratio to the best plain), 2 CPU (to the cheapest)
	for size in 0 1 2; do
		for lib in sys 8; do
			ver=$vsys
			[ "$lib" = 8 ] && ver=$v8
			cb=$(median "$tmp/$lib-cb-$size-64" "$1")
			p8=$(median "$tmp/$lib-plain-$size-8" "$1")
			p64=$(median "$tmp/$lib-plain-$size-64" "$1")
			awk -v s="${names[$size]}" -v v="$ver" -v cb="$cb" -v a="$p8" -v b="$p64" \
				-v col="$1" 'BEGIN {
				if (col == 1) { best = a > b ? a : b; f = "%.0f" } else { best = a < b ? a : b; f = "%.3f" }
				printf "| %s | %s | " f " | " f " | " f " | %.2f |\n", s, v, cb, a, b, cb / best }'
		done
	done
}
echo "Profiles/s (medians):"
echo
echo "| size | libcurl | component, 64 in flight | plain, 8 transfers | plain, 64 transfers | component / best plain |"
echo "|---|---|---|---|---|---|"
table 1
echo
echo "CPU seconds per 1000 profiles (medians):"
echo
echo "| size | libcurl | component, 64 in flight | plain, 8 transfers | plain, 64 transfers | component / cheapest plain |"
echo "|---|---|---|---|---|---|"
table 2
