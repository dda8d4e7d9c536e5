#!/usr/bin/env bash
# The durable queue under kill -9: `mockhost run` with a queue in front of a
# `mockhost sink` is killed at random moments while clients post profiles,
# each with a unique id, and started again on the same queue directory. The
# sink is killed half way through round 2 and comes back half way through
# round 4, so that a backlog builds up on disk and is replayed after
# restarts; round 3, with the sink down, ends with a clean stop (SIGTERM),
# which must keep what was still waiting for a retry. Then one last
# `mockhost run` drains the queue.
#
# Verdict: every id a client got 200 for must reach the sink (a missing one
# is an acknowledged profile lost), and the ids received more than once must
# stay within docs/queue.md's bound: twice the window + 256 records per crash
# (in flight, and delivered but not yet handed to the store).
#
# usage: queue_torture.sh [MOCKHOST]   (default: PW_MOCKHOST, else build/mockhost)
# TORTURE_SEED=N replays the same random kill moments; TORTURE_KEEP=1 keeps
# the working directory.
set -uo pipefail

MOCKHOST=${1:-${PW_MOCKHOST:-$(cd "$(dirname "$0")/.." && pwd)/build/mockhost}}
ROUNDS=5
CLIENTS=4
SINK_DOWN_ROUND=2 # the sink is killed half way through this round...
CLEAN_ROUND=3     # ...this round, without a sink, ends with SIGTERM...
                  # ...and the sink comes back half way through the next
MAX_CONNECTIONS=8 # the feeder's window is twice this (docs/queue.md)
DRAIN_SECONDS=30
SEED=${TORTURE_SEED:-$$}
RANDOM=$SEED

T=$(mktemp -d "${TMPDIR:-/tmp}/pw-torture.XXXXXX")
Q=$T/queue
SINK_LOG=$T/sink.log
SINK_PID=
RUN_PID=
RUN_URL=
SINK_PORT=
KILLS=0
FAILED=0

cleanup() {
	for p in $RUN_PID $SINK_PID; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ "$FAILED" = 1 ] || [ -n "${TORTURE_KEEP:-}" ]; then
		echo "working directory kept: $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT

fail() {
	FAILED=1
	echo "FAIL: $*" >&2
	exit 1
}
log() { echo "== $*"; }

[ -x "$MOCKHOST" ] || fail "mockhost not found at $MOCKHOST (set PW_MOCKHOST)"
command -v curl >/dev/null || fail "curl is required"

# Waits up to 10 s for the line a server prints once it listens, and prints
# the URL from it. $1: the output file, $2: the line's prefix, $3: its pid.
wait_url() {
	local i line
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 "^$2" "$1" 2>/dev/null)
		if [ -n "$line" ]; then
			echo "${line#"$2"}"
			return 0
		fi
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Starts the sink, on $SINK_PORT once it is known (a restart keeps the
# endpoint's URL). Every sink appends to the same log; the sink writes each
# line before it answers, so a kill -9 loses none.
start_sink() {
	local port=${SINK_PORT:-0} i j before line
	for ((i = 0; i < 50; i++)); do
		before=$(grep -c '^sink listening on ' "$SINK_LOG")
		"$MOCKHOST" sink --listen "127.0.0.1:$port" >>"$SINK_LOG" 2>&1 &
		SINK_PID=$!
		for ((j = 0; j < 100; j++)); do
			if [ "$(grep -c '^sink listening on ' "$SINK_LOG")" -gt "$before" ]; then
				line=$(grep '^sink listening on ' "$SINK_LOG" | tail -n 1)
				SINK_PORT=${line##*:}
				return 0
			fi
			kill -0 "$SINK_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$SINK_PID" 2>/dev/null
		wait "$SINK_PID" 2>/dev/null
		SINK_PID=
		sleep 0.1 # the port may still be taken for a moment
	done
	fail "the sink does not start on port $port: $(tail -n 5 "$SINK_LOG")"
}

stop_sink() {
	kill -9 "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=
}

start_run() {
	local out=$T/run.$1.out
	"$MOCKHOST" run --config "$T/config.json" --listen 127.0.0.1:0 >"$out" 2>"$T/run.$1.err" &
	RUN_PID=$!
	RUN_URL=$(wait_url "$out" "mockhost run listening on " "$RUN_PID") ||
		fail "mockhost run does not start (run $1): $(cat "$T/run.$1.err")"
}

# One producer: posts profiles until a connection fails (the process was
# killed), and records an id only once the answer was a whole 200.
# One client: batches of 100 requests over one keep-alive connection (one
# curl process each), so a round acknowledges far more profiles than the
# duplicate bound allows per crash and a missing position save shows. An
# id is acknowledged only when its own request got 200; the client stops
# after the first batch with anything else.
client() {
	local round=$1 c=$2 b=0 i urls code url out
	while :; do
		b=$((b + 1))
		urls=()
		for i in $(seq 1 100); do
			urls+=("$RUN_URL/ingest?name=torture%7Bid%3Dr${round}c${c}b${b}n${i}%7D&format=pprof")
		done
		out=$(curl -s -o /dev/null -w '%{exitcode} %{http_code} %{url_effective}\n' --max-time 5 \
			-H 'Content-Type: application/octet-stream' --data-binary @"$T/profile.pprof" \
			"${urls[@]}")
		local failed=0
		while read -r rc code url; do
			url=${url#*id%3D}
			url=${url%%%7D*}
			if [ "$rc" = 0 ] && [ "$code" = 200 ]; then
				echo "$url" >>"$T/acked.$round.$c"
			else
				# 28: the request timed out, where the component should
				# have answered or the connection failed at once.
				[ "$rc" = 28 ] && echo "$url" >>"$T/hung"
				failed=1
			fi
		done <<<"$out"
		[ "$failed" = 0 ] || return 0
	done
}

# Ids the sink received, one line per delivery.
received() {
	grep '^ingest .* name=torture{' "$SINK_LOG" | grep -o '[{,]id=[^,}]*' | cut -d= -f2
}

# The smallest pprof profile the sink accepts: one sample type
# (samples/count), one sample, and its string table.
printf '\x0a\x04\x08\x01\x10\x02\x12\x02\x10\x05\x32\x00\x32\x07samples\x32\x05count' \
	>"$T/profile.pprof"
: >"$SINK_LOG"

start_sink
cat >"$T/config.json" <<EOF
{
  "endpoint": [{
    "url": "http://127.0.0.1:$SINK_PORT",
    "max_connections": $MAX_CONNECTIONS,
    "min_backoff_period": "10ms",
    "max_backoff_period": "200ms"
  }],
  "queue": {"directory": "$Q", "fsync": "always"}
}
EOF
log "seed $SEED, sink on port $SINK_PORT, queue in $Q"

for ((round = 1; round <= ROUNDS; round++)); do
	start_run "$round"
	pids=()
	for ((c = 1; c <= CLIENTS; c++)); do
		client "$round" "$c" &
		pids+=($!)
	done
	ms=$((300 + RANDOM % 1201))
	half=$(printf '%d.%03d' $((ms / 2000)) $((ms / 2 % 1000)))
	sleep "$half"
	note=
	if [ "$round" = "$SINK_DOWN_ROUND" ]; then
		stop_sink
		KILLS=$((KILLS + 1))
		note=", sink killed"
	elif [ -z "$SINK_PID" ] && [ "$round" != "$CLEAN_ROUND" ]; then
		start_sink
		note=", sink restarted"
	fi
	sleep "$half"
	kill -0 "$RUN_PID" 2>/dev/null ||
		fail "mockhost run died on its own in round $round: $(cat "$T/run.$round.err")"
	if [ "$round" = "$CLEAN_ROUND" ]; then
		how="stopped (SIGTERM)"
		kill -TERM "$RUN_PID"
		wait "$RUN_PID" ||
			fail "mockhost run exited $? on SIGTERM: $(cat "$T/run.$round.err")"
	else
		how="killed"
		kill -9 "$RUN_PID"
		wait "$RUN_PID" 2>/dev/null
		KILLS=$((KILLS + 1))
	fi
	RUN_PID=
	wait "${pids[@]}"
	log "round $round: $how after ${ms}ms," \
		"$(cat "$T"/acked."$round".* 2>/dev/null | wc -l) acked$note"
done
[ -n "$SINK_PID" ] || start_sink

# The last start drains the queue: wait until every acked id has arrived.
cat "$T"/acked.* 2>/dev/null | sort -u >"$T/acked"
start_run final
for ((i = 0; i < DRAIN_SECONDS * 5; i++)); do
	received | sort -u >"$T/received"
	comm -23 "$T/acked" "$T/received" >"$T/missing"
	[ -s "$T/missing" ] || break
	sleep 0.2
done
# A clean stop saves every position and sends nothing twice.
kill -TERM "$RUN_PID"
wait "$RUN_PID"
rc=$?
RUN_PID=
stop_sink

acked=$(wc -l <"$T/acked")
received | sort >"$T/deliveries"
received=$(sort -u "$T/deliveries" | wc -l)
deliveries=$(wc -l <"$T/deliveries")
duplicates=$((deliveries - received))
dup_ids=$(uniq -d "$T/deliveries" | wc -l)
bound=$((KILLS * (2 * (2 * MAX_CONNECTIONS) + 256)))
echo "rounds=$ROUNDS kills=$KILLS acked=$acked received=$received" \
	"duplicates=$duplicates (ids=$dup_ids) bound=$bound seed=$SEED"

[ "$acked" -gt 0 ] || fail "no profile was acknowledged: $(cat "$T"/run.1.err)"
[ -s "$T/hung" ] && fail "requests hung for 5 s: $(tr '\n' ' ' <"$T/hung")"
[ "$rc" = 0 ] || fail "the last mockhost run exited $rc on SIGTERM: $(cat "$T/run.final.err")"
if [ -s "$T/missing" ]; then
	fail "$(wc -l <"$T/missing") acknowledged profiles never arrived:" \
		"$(head -50 "$T/missing" | tr '\n' ' ')"
fi
[ "$duplicates" -le "$bound" ] ||
	fail "$duplicates duplicate deliveries, more than the bound of $bound"
echo "ok"
