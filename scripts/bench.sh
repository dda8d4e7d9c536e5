#!/usr/bin/env bash
# Runs the performance benchmark: starts the receiver, runs pw-bench (the
# plugin, the plain libcurl client and wrk, side by side), then measures
# `mockhost run` idle. Prints markdown tables; see docs/performance.md.
#
# usage: scripts/bench.sh [--quick] [--build DIR] [--seconds S]
#                         [--profiles DIR] [--port BASE] [--curl8]
#                         [--endpoints 1|3|10] [--batch [JSON]] [--queue]
#   --quick      short runs (the whole script finishes in under a minute)
#   --build DIR  a configured build directory (default: build-bench, set
#                up here with --buildtype=release when missing)
#   --profiles   directory of real profiles to use where their size fits
#   --curl8      run the benchmark, mockhost and the libcurl-only process on
#                libcurl 8 from bookworm-backports (scripts/curl8.sh), the
#                same binaries loading it through LD_LIBRARY_PATH
#   --endpoints  throughput rows up to this many endpoints (default 10)
#   --batch      instead of the tables: 2 KiB profiles, 64 in flight
#                (callback form) and 64 threads (blocking form), 1 and 3
#                endpoints, without and with each endpoint's `batch` block
#                (JSON; default {}, the defaults), alternating runs, and
#                wrk's request rate for the same 2 KiB request
#   --queue      instead of the tables: the durable queue (fsync "always")
#                against memory mode at 2 KiB, 64 KiB and 1 MiB, 1 endpoint,
#                64 in flight, alternating runs; fsync p50/p99 and profiles
#                per fsync; recovery from a 1 GiB backlog (256 MiB when the
#                disk has less than 2.5 GiB free, 64 MiB with --quick). The
#                queue lives in DIR/bench-queue on the build directory's
#                disk and is removed afterwards
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build=""
quick=0
seconds=""
profiles=""
port=18080
curl8=0
endpoints=""
batch=""
queue=0
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--build) build="$2"; shift ;;
	--seconds) seconds="$2"; shift ;;
	--profiles) profiles="$2"; shift ;;
	--port) port="$2"; shift ;;
	--curl8) curl8=1 ;;
	--endpoints) endpoints="$2"; shift ;;
	--batch)
		batch='{}'
		if [ $# -gt 1 ] && [ "${2#\{}" != "$2" ]; then
			batch="$2"
			shift
		fi
		;;
	--queue) queue=1 ;;
	-h|--help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ -z "$build" ]; then
	build="$root/build-bench"
	if [ ! -d "$build" ]; then
		meson setup "$build" "$root" --buildtype=release >/dev/null
	fi
fi
meson compile -C "$build" pw-bench pw-bench-recv pw-bench-rssfloor pyroscope_write mockhost >/dev/null

recv="$build/bench/pw-bench-recv"
bench="$build/bench/pw-bench"
plugin="$build/pyroscope_write.so"
mockhost="$build/mockhost"

# The programs that load libcurl run through "${on_curl[@]}": plain `env`
# (same process, so $! stays the program's pid), with LD_LIBRARY_PATH for
# --curl8. The receiver, wrk and the curl tool keep the system's libraries.
on_curl=(env)
curl_desc="$(curl-config --version 2>/dev/null || echo unknown) (the system's)"
if [ "$curl8" = 1 ]; then
	libdir="$("$root/scripts/curl8.sh" --quiet)"
	on_curl=(env "LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
	curl_desc="libcurl $(LD_LIBRARY_PATH="$libdir" "$root/build-curl8/curl-version") from $libdir"
fi

tmp="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "# Machine"
echo
echo "- nproc: $(nproc)"
echo "- CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
echo "- kernel: $(uname -sr)"
echo "- libcurl: $curl_desc"
echo "- load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

"$recv" -p "$port" -n 10 >"$tmp/recv.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
	grep -q listening "$tmp/recv.log" 2>/dev/null && break
	sleep 0.05
done
grep -q listening "$tmp/recv.log" || { cat "$tmp/recv.log" >&2; exit 1; }

args=(--plugin "$plugin" --port "$port")
[ "$quick" = 1 ] && args+=(--quick)
[ -n "$seconds" ] && args+=(--seconds "$seconds")
[ -n "$profiles" ] && args+=(--profiles "$profiles")
if command -v wrk >/dev/null; then
	args+=(--wrk "$(command -v wrk)")
else
	echo "(wrk not found: its columns stay empty)"
fi
if [ -n "$batch" ]; then
	# One instance without and one with the batch block, runs alternating;
	# medians of five runs each, with wrk's rate for the same request.
	TMPDIR="$tmp" "${on_curl[@]}" "$bench" "${args[@]}" --batch "$batch"
	echo
	echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi
if [ "$queue" = 1 ]; then
	# On the build directory's disk, not on tmpfs: fdatasync is what is
	# measured.
	qdir="$build/bench-queue"
	rm -rf "$qdir"
	avail_kb=$(df -Pk "$build" | awk 'NR == 2 {print $4}')
	backlog=1024
	if [ "$quick" = 1 ]; then
		backlog=64
	elif [ "$avail_kb" -lt $((2560 * 1024)) ]; then
		backlog=256
		echo "(less than 2.5 GiB free: a backlog of 256 MiB instead of 1 GiB)"
	fi
	echo "- queue directory: $qdir, file system $(stat -f -c %T "$build"), on $(df -P "$build" | awk 'NR == 2 {print $1}')"
	echo "- free before: $(df -Ph "$build" | awk 'NR == 2 {print $4 " of " $2}')"
	echo
	TMPDIR="$tmp" "${on_curl[@]}" "$bench" "${args[@]}" --queue "$qdir" --backlog-mib "$backlog"
	rm -rf "$qdir"
	echo
	echo "- free after: $(df -Ph "$build" | awk 'NR == 2 {print $4}')"
	echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi
[ -n "$endpoints" ] && args+=(--endpoints "$endpoints")
TMPDIR="$tmp" "${on_curl[@]}" "$bench" "${args[@]}"

# Idle cost of a host process: `mockhost run` with 3 endpoints, nothing
# pushed. RSS after start-up, CPU (user+sys) burnt over the idle window.
idle_secs=10
[ "$quick" = 1 ] && idle_secs=3
cat >"$tmp/idle.json" <<JSON
{"endpoint": [
  {"url": "http://127.0.0.1:$port"},
  {"url": "http://127.0.0.1:$((port + 1))"},
  {"url": "http://127.0.0.1:$((port + 2))"}
]}
JSON
"${on_curl[@]}" "$mockhost" --plugin "$plugin" run --config "$tmp/idle.json" --listen 127.0.0.1:0 \
	--log-level error >"$tmp/mockhost.log" 2>&1 &
mh=$!
pids+=("$mh")
sleep 1
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
if ! kill -0 "$mh" 2>/dev/null; then
	echo "mockhost run did not start:" >&2
	cat "$tmp/mockhost.log" >&2
	exit 1
fi
t0=$(cpu_ticks "$mh")
sleep "$idle_secs"
t1=$(cpu_ticks "$mh")
hz=$(getconf CLK_TCK)
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$mh/status")
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$mh/status")
# Private memory, without the pages of shared libraries.
anon_kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$mh/status")
# What any process pays for libcurl alone, measured now on this machine.
floor_out="$("${on_curl[@]}" "$build/bench/pw-bench-rssfloor")"
floor_kb=$(awk '/^VmRSS:/ {print $2}' <<<"$floor_out")
floor_anon_kb=$(awk '/^RssAnon:/ {print $2}' <<<"$floor_out")
echo
echo "## mockhost run idle (3 endpoints, ${idle_secs} s)"
echo
echo "| idle RSS | of which private (RssAnon) | peak RSS | CPU over the window | CPU per 10 s | libcurl-only process RSS (RssAnon) | mockhost above it |"
echo "|---|---|---|---|---|---|---|"
awk -v rss="$rss_kb" -v anon="$anon_kb" -v hwm="$hwm_kb" -v d=$((t1 - t0)) -v hz="$hz" \
	-v s="$idle_secs" -v fl="$floor_kb" -v fla="$floor_anon_kb" 'BEGIN { ms = d * 1000 / hz;
	printf "| %.1f MiB | %.1f MiB | %.1f MiB | %d ms | %.0f ms | %.1f MiB (%.1f MiB) | %.2f MiB |\n", rss/1024, anon/1024, hwm/1024, ms, ms * 10 / s, fl/1024, fla/1024, (rss-fl)/1024 }'

# Memory given back: a burst of large profiles through the same process's
# /ingest (64 at a time, fanned out to the 3 endpoints), then RSS once the
# component has been idle for a while (it releases after 2 s).
burst_n=1000
[ "$quick" = 1 ] && burst_n=200
burst_file=""
if [ -n "$profiles" ]; then
	burst_file=$(find "$profiles" -maxdepth 1 -type f -name '*.pb.gz' -size -1025k -printf '%s %p\n' |
		sort -n | tail -1 | cut -d' ' -f2-)
fi
if [ -z "$burst_file" ]; then
	burst_file="$tmp/burst.bin"
	head -c 786432 /dev/urandom >"$burst_file"
fi
mh_port=$(sed -n 's#.*listening on http://[0-9.]*:\([0-9]*\).*#\1#p' "$tmp/mockhost.log" | head -1)
if command -v curl >/dev/null && [ -n "$mh_port" ]; then
	t0=$(date +%s.%N)
	codes=$(seq "$burst_n" | xargs -P 64 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
		--data-binary @"$burst_file" \
		"http://127.0.0.1:$mh_port/ingest?name=bench&format=pprof" | sort | uniq -c |
		awk '{printf "%s%d x %s", n++ ? ", " : "", $1, $2}')
	t1=$(date +%s.%N)
	busy_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$mh/status")
	sleep 5
	after_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$mh/status")
	hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$mh/status")
	echo
	echo "## mockhost run after a burst ($burst_n profiles of $(stat -c %s "$burst_file") B through /ingest, 64 at a time, 3 endpoints)"
	echo
	echo "| answers | burst took | peak RSS | RSS at the end of the burst | RSS 5 s later | idle RSS before |"
	echo "|---|---|---|---|---|---|"
	awk -v c="$codes" -v t0="$t0" -v t1="$t1" -v hwm="$hwm_kb" -v busy="$busy_kb" \
		-v after="$after_kb" -v rss="$rss_kb" 'BEGIN {
	printf "| %s | %.1f s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB |\n", c, t1 - t0, hwm/1024, busy/1024, after/1024, rss/1024 }'
else
	echo
	echo "(curl not found or mockhost port unknown: no burst measurement)"
fi
echo
echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg)"
