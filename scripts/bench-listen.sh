#!/usr/bin/env bash
# Benchmarks mockhost run's listener with many keep-alive clients: wrk POSTs
# a small folded profile to /ingest over N connections, mockhost run
# forwards each to the fast receiver (pw-bench-recv), and the table says
# requests/s, errors, and the mockhost process's threads and memory. See
# docs/performance.md ("The listener with many clients").
#
# usage: scripts/bench-listen.sh [--build DIR] [--baseline DIR] [--seconds S]
#                                [--conns "50 1000 10000"] [--port BASE]
#   --build DIR     a configured build directory (default: build-bench, set
#                   up here with --buildtype=release when missing)
#   --baseline DIR  the build directory of another commit: the same load is
#                   run against its mockhost and plugin too, each pair of
#                   runs back to back, and the ratios new/old are printed
#   --seconds S     length of each wrk run (default 15)
#   --conns LIST    connection counts (default "50 1000 10000")
#   --port BASE     the receiver's port (default 18280)
# To get a baseline of the thread-per-connection server:
#   git worktree add /tmp/pw-old 5df241b
#   meson setup /tmp/pw-old/build /tmp/pw-old --buildtype=release
#   meson compile -C /tmp/pw-old/build mockhost pyroscope_write
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build=""
baseline=""
seconds=15
conns="50 1000 10000"
port=18280
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build="$2"; shift ;;
	--baseline) baseline="$2"; shift ;;
	--seconds) seconds="$2"; shift ;;
	--conns) conns="$2"; shift ;;
	--port) port="$2"; shift ;;
	-h|--help) sed -n '2,21p' "$0"; exit 0 ;;
	*) echo "bench-listen.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
command -v wrk >/dev/null || { echo "bench-listen.sh: wrk not found" >&2; exit 1; }

if [ -z "$build" ]; then
	build="$root/build-bench"
	[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
fi
meson compile -C "$build" pw-bench-recv pyroscope_write mockhost >/dev/null
if [ -n "$baseline" ]; then
	for f in mockhost pyroscope_write.so; do
		[ -x "$baseline/$f" ] || { echo "bench-listen.sh: no $baseline/$f" >&2; exit 1; }
	done
fi

# Every connection is a descriptor in wrk and one in mockhost (and, in a
# thread-per-connection server, a thread).
max_conns=0
for n in $conns; do [ "$n" -gt "$max_conns" ] && max_conns=$n; done
want=$((max_conns + 1024))
if [ "$(ulimit -n)" -lt "$want" ]; then
	ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" -lt "$want" ]; then
	echo "bench-listen.sh: open files limited to $(ulimit -n), $want wanted" >&2
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

"$build/bench/pw-bench-recv" -p "$port" -n 1 >"$tmp/recv.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
	grep -q listening "$tmp/recv.log" 2>/dev/null && break
	sleep 0.05
done
grep -q listening "$tmp/recv.log" || { cat "$tmp/recv.log" >&2; exit 1; }

printf '{"endpoint": [{"url": "http://127.0.0.1:%d"}]}\n' "$port" >"$tmp/config.json"
# A small folded profile, as an SDK's /ingest would send it.
printf 'main;serve;handle;parse 120\nmain;serve;handle;encode 80\nmain;gc 40\n' >"$tmp/body.txt"
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
local f = io.open("$tmp/body.txt", "rb")
wrk.body = f:read("*a")
f:close()
LUA

# Starts one mockhost run (build dir $1); sets mh and mh_port.
start_mockhost() {
	"$1/mockhost" --plugin "$1/pyroscope_write.so" run --config "$tmp/config.json" \
		--listen 127.0.0.1:0 --log-level error >"$tmp/mockhost.log" 2>&1 &
	mh=$!
	pids+=("$mh")
	mh_port=""
	for _ in $(seq 100); do
		mh_port=$(sed -n 's#.*listening on https*://[0-9.]*:\([0-9]*\).*#\1#p' "$tmp/mockhost.log" |
			head -1)
		[ -n "$mh_port" ] && break
		sleep 0.05
	done
	[ -n "$mh_port" ] || { echo "mockhost run did not start:" >&2; cat "$tmp/mockhost.log" >&2; exit 1; }
}

stop_mockhost() {
	kill "$mh" 2>/dev/null || true
	wait "$mh" 2>/dev/null || true
}

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# One run: build dir $1, $2 connections. Prints one line of fields:
# req/s errors max-threads max-VmRSS-kB VmHWM-kB, and the growth of VmRSS
# over the idle process.
run_one() {
	local dir="$1" n="$2" threads=0 rss=0 t r wpid idle
	start_mockhost "$dir"
	sleep 0.5
	idle=$(status_kb "$mh" VmRSS)
	wrk -c "$n" -t 2 -d "${seconds}s" --timeout 10s -s "$tmp/post.lua" \
		"http://127.0.0.1:$mh_port/ingest?name=app&format=folded" >"$tmp/wrk.out" 2>&1 &
	wpid=$!
	# Threads and RSS while the connections are open (wrk closes them all
	# as it ends), sampled every half second.
	while kill -0 "$wpid" 2>/dev/null; do
		t=$(status_kb "$mh" Threads || echo 0)
		r=$(status_kb "$mh" VmRSS || echo 0)
		[ "${t:-0}" -gt "$threads" ] && threads=$t
		[ "${r:-0}" -gt "$rss" ] && rss=$r
		sleep 0.5
	done
	wait "$wpid" || true
	local hwm
	hwm=$(status_kb "$mh" VmHWM || echo 0)
	stop_mockhost
	awk -v th="$threads" -v rss="$rss" -v hwm="$hwm" -v idle="$idle" '
		/^Requests\/sec:/ { rps = $2 }
		/Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10; to = $10 }
		/Non-2xx or 3xx responses:/ { err += $5; bad = $5 }
		END { printf "%.0f %d %d %d %d %d\n", rps, err, th, rss, hwm, rss - idle }' "$tmp/wrk.out"
}

fmt_row() { # label n rps errors threads rss hwm growth
	awk -v l="$1" -v n="$2" -v q="$3" -v e="$4" -v t="$5" -v r="$6" -v h="$7" -v g="$8" 'BEGIN {
		printf "| %s | %d | %d | %d | %d | %.0f MiB | %.0f MiB | %.1f KiB |\n",
			l, n, q, e, t, r / 1024, h / 1024, n ? g / n : 0 }'
}

echo "# mockhost run with many keep-alive clients"
echo
echo "- nproc: $(nproc); kernel: $(uname -sr); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- wrk -t 2 -d ${seconds}s --timeout 10s, POST of $(stat -c %s "$tmp/body.txt") B to /ingest?name=app&format=folded, forwarded to pw-bench-recv"
echo "- new: $build${baseline:+; old: $baseline}"
echo
echo "| build | connections | requests/s | errors | threads (max) | VmRSS (max) | VmHWM | RSS over idle, per connection |"
echo "|---|---|---|---|---|---|---|---|"
ratios=()
for n in $conns; do
	read -r nq ne nt nr nh ng < <(run_one "$build" "$n")
	fmt_row new "$n" "$nq" "$ne" "$nt" "$nr" "$nh" "$ng"
	if [ -n "$baseline" ]; then
		read -r oq oe ot or oh og < <(run_one "$baseline" "$n")
		fmt_row old "$n" "$oq" "$oe" "$ot" "$or" "$oh" "$og"
		ratios+=("$(awk -v n="$n" -v nq="$nq" -v oq="$oq" -v nt="$nt" -v ot="$ot" \
			-v nr="$nr" -v or="$or" 'BEGIN {
			printf "| %d | %.2f | %.3f | %.2f |", n, oq ? nq / oq : 0, ot ? nt / ot : 0, or ? nr / or : 0 }')")
	fi
done
if [ -n "$baseline" ]; then
	echo
	echo "| connections | throughput new/old | threads new/old | RSS new/old |"
	echo "|---|---|---|---|"
	printf '%s\n' "${ratios[@]}"
fi
echo
echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg)"
