#!/usr/bin/env bash
# The demo: a local Pyroscope-compatible receiver (`mockhost sink`), the
# component running inside `mockhost run` with two endpoints pointing at it,
# profiles sent in through both receiver APIs, and three hot reloads (valid,
# invalid, valid again). Prints what arrived and the key metrics, and fails
# when something that should have arrived did not.
#
# Usage: scripts/demo.sh            (from anywhere; builds into build/ if needed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD_DIR:-build}"

if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

say "dependencies and build"
scripts/deps.sh
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" >/dev/null
fi
meson compile -C "$BUILD" mockhost pyroscope_write >/dev/null
MOCKHOST="$ROOT/$BUILD/mockhost"
PLUGIN="$ROOT/$BUILD/pyroscope_write.so"
echo "mockhost: $MOCKHOST"
echo "plugin:   $PLUGIN"

TMP="$(mktemp -d /tmp/pyroscope-write-demo.XXXXXX)"
SINK_PID=""
RUN_PID=""
cleanup() {
	for pid in $RUN_PID $SINK_PID; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for the "... listening on URL" line a server prints first.
url_of() {
	local file="$1" i
	for i in $(seq 1 100); do
		if grep -q ' listening on ' "$file" 2>/dev/null; then
			sed -n 's/.* listening on \(http[^ ]*\).*/\1/p' "$file" | head -n1
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# POST helper: prints the status code.
post() {
	curl -sS -o "$TMP/last-body" -w '%{http_code}' "$@"
}

expect_200() {
	local what="$1" code="$2"
	if [ "$code" != 200 ]; then
		echo "   answer: $(cat "$TMP/last-body" 2>/dev/null)"
		die "$what: HTTP $code"
	fi
	echo "   $what: HTTP $code"
}

metric() { # metric SERIES -> value (0 if absent)
	curl -sS "$HOST/metrics" | awk -v s="$1" '$1 == s { v = $2 } END { print v + 0 }'
}

wait_metric_gt() { # SERIES VALUE
	local i
	for i in $(seq 1 100); do
		if awk -v a="$(metric "$1")" -v b="$2" 'BEGIN { exit !(a > b) }'; then
			return 0
		fi
		sleep 0.05
	done
	die "$1 did not go above $2"
}

wait_health() { # CODE
	local i
	for i in $(seq 1 100); do
		if [ "$(curl -sS -o /dev/null -w '%{http_code}' "$HOST/-/healthy")" = "$1" ]; then
			return 0
		fi
		sleep 0.05
	done
	die "/-/healthy did not answer $1"
}

say "start the local receiver (mockhost sink)"
"$MOCKHOST" sink --listen 127.0.0.1:0 --dir "$TMP/received" >"$TMP/sink.out" 2>"$TMP/sink.err" &
SINK_PID=$!
SINK="$(url_of "$TMP/sink.out")" || die "the sink did not start: $(cat "$TMP/sink.err")"
echo "sink: $SINK"

say "start the component (mockhost run) with examples/demo.json pointed at the sink"
CONFIG="$TMP/demo.json"
sed "s#http://127.0.0.1:4100#$SINK#g" examples/demo.json >"$CONFIG"
cat "$CONFIG"
"$MOCKHOST" --plugin "$PLUGIN" run --config "$CONFIG" --listen 127.0.0.1:0 \
	>"$TMP/run.out" 2>"$TMP/run.log" &
RUN_PID=$!
HOST="$(url_of "$TMP/run.out")" || die "mockhost run did not start: $(cat "$TMP/run.log")"
echo "host: $HOST"
curl -sS --retry 20 --retry-connrefused --retry-delay 0 -o /dev/null "$HOST/-/ready"

say "send profiles through the host's receivers"
# An SDK request, raw pprof (format=pprof, application/octet-stream).
expect_200 "SDK /ingest, pprof body" "$(post -H 'Content-Type: application/octet-stream' \
	--data-binary @examples/profiles/cpu.pb.gz \
	"$HOST/ingest?name=demo.app.cpu%7Bregion%3Deu-west%7D&format=pprof&spyName=gospy&sampleRate=100")"
# An SDK request, multipart/form-data as the Go and Python SDKs send it.
expect_200 "SDK /ingest, multipart body" "$(post \
	-F 'profile=@examples/profiles/alloc.pb.gz;filename=profile.pprof;type=application/octet-stream' \
	-F 'sample_type_config={"alloc_space":{"units":"bytes"}};filename=sample_type_config.json' \
	"$HOST/ingest?name=demo.app.alloc&format=pprof")"
# A Connect push (application/proto), the body encoded by protoc from text.
RAW="$(od -An -v -tx1 examples/profiles/cpu.pb.gz | tr -d ' \n' | sed 's/../\\x&/g')"
printf 'series { labels { name: "__name__" value: "process_cpu" }
  labels { name: "service_name" value: "demo.curl" }
  samples { raw_profile: "%s" } }\n' "$RAW" |
	protoc --encode=push.v1.PushRequest -I tests tests/push.proto >"$TMP/push.bin"
expect_200 "Connect Push (curl + protoc)" "$(post -H 'Content-Type: application/proto' \
	-H 'Connect-Protocol-Version: 1' -H 'Connect-Timeout-Ms: 10000' \
	--data-binary @"$TMP/push.bin" "$HOST/push.v1.PusherService/Push")"
# A chain, as Alloy instances chain: mockhost push -> mockhost run -> sink.
printf '{"endpoint": [{"name": "to-host", "url": "%s"}]}\n' "$HOST" >"$TMP/chain.json"
"$MOCKHOST" --plugin "$PLUGIN" push --config "$TMP/chain.json" --label __name__=process_cpu \
	--label service_name=demo.chained --profile examples/profiles/cpu.pb.gz --timeout 10s \
	>"$TMP/chain.out" || die "chained push: $(cat "$TMP/chain.out")"
echo "   chained push (mockhost push -> mockhost run): $(head -n1 "$TMP/chain.out")"

say "reload 1: a valid change (one more external label), written editor-style"
OK0="$(metric 'mockhost_reloads_total{result="success"}')"
cat >"$CONFIG.new" <<EOF
{
  "external_labels": { "env": "demo", "team": "profiling" },
  "endpoint": [
    { "name": "primary", "url": "$SINK" },
    { "name": "secondary", "url": "$SINK" }
  ]
}
EOF
mv "$CONFIG.new" "$CONFIG"
wait_metric_gt 'mockhost_reloads_total{result="success"}' "$OK0"
echo "   /-/healthy: $(curl -sS "$HOST/-/healthy")"
expect_200 "SDK /ingest after the reload" "$(post -H 'Content-Type: application/octet-stream' \
	--data-binary @examples/profiles/cpu.pb.gz "$HOST/ingest?name=demo.app.cpu&format=pprof")"

say "reload 2: an invalid document (bad URL scheme, a typo)"
cat >"$CONFIG" <<EOF
{
  "external_labels": { "env": "demo" },
  "endpoint": [
    { "name": "primary", "url": "ftp://$(echo "$SINK" | sed 's#http://##')" },
    { "name": "secondary", "url": "$SINK", "remote_timout": "5s" }
  ]
}
EOF
wait_health 503
echo "   /-/healthy answers 503:"
curl -sS "$HOST/-/healthy" | sed 's/^/     /'
expect_200 "SDK /ingest meanwhile (last valid configuration)" "$(post \
	-H 'Content-Type: application/octet-stream' --data-binary @examples/profiles/cpu.pb.gz \
	"$HOST/ingest?name=demo.app.cpu&format=pprof")"

say "reload 3: valid again, applied with POST /-/reload"
sed "s#http://127.0.0.1:4100#$SINK#g" examples/demo.json >"$CONFIG.new"
# Renamed into place and reloaded explicitly too: both paths end up applied.
mv "$CONFIG.new" "$CONFIG"
echo "   POST /-/reload: $(curl -sS -X POST "$HOST/-/reload")"
wait_health 200
echo "   /-/healthy: $(curl -sS "$HOST/-/healthy")"

say "host log (reloads)"
grep -E 'reload|refused' "$TMP/run.log" | sed 's/^/  /' || true

say "what arrived at the sink"
tail -n +2 "$TMP/sink.out" | sed 's/^/  /'
curl -sS "$SINK/stats" >"$TMP/stats.json"
echo "  /stats: $(tr -d ' \n' <"$TMP/stats.json")"

say "key metrics (mockhost run /metrics)"
curl -sS "$HOST/metrics" | grep -E '^(pyroscope_write_(sent|dropped)_profiles_total|pyroscope_write_retries_total|mockhost_reloads_total|mockhost_http_requests_total)' |
	sed 's/^/  /'

say "checks"
count() { # GROUP KEY from /stats
	tr -d ' \n' <"$TMP/stats.json" | sed -n "s/.*\"$1\":{[^}]*\"$2\":\([0-9]*\).*/\1/p"
}
INGESTS="$(count ingest accepted)"
SERIES="$(count push series)"
# 4 SDK requests and 2 pushes, each delivered to both endpoints.
[ "$INGESTS" = 8 ] || die "expected 8 ingest requests at the sink, got ${INGESTS:-none}"
[ "$SERIES" = 4 ] || die "expected 4 pushed series at the sink, got ${SERIES:-none}"
for ep in primary secondary; do
	sent="$(metric "pyroscope_write_sent_profiles_total{endpoint=\"$ep\"}")"
	dropped="$(metric "pyroscope_write_dropped_profiles_total{endpoint=\"$ep\"}")"
	[ "$sent" = 6 ] && [ "$dropped" = 0 ] || die "$ep: sent=$sent dropped=$dropped, expected 6 and 0"
done
grep -q 'team=profiling' "$TMP/sink.out" || die "the external label of reload 1 never arrived"
echo "  sink: $INGESTS ingest requests, $SERIES pushed series; every endpoint sent 6, dropped 0"

say "stop (SIGTERM drains and exits 0)"
kill -TERM "$RUN_PID"
if wait "$RUN_PID"; then
	echo "  mockhost run exited 0"
else
	die "mockhost run exited $?"
fi
RUN_PID=""

say "the durable queue: acknowledged profiles survive kill -9 and an outage"
QDIR="$TMP/queue"
start_queued() { # ENDPOINT-URL
	printf '{"endpoint": [{"name": "primary", "url": "%s", "min_backoff_period": "50ms"}],\n "queue": {"directory": "%s", "max_age": "1h"}}\n' \
		"$1" "$QDIR" >"$TMP/queue.json"
	"$MOCKHOST" --plugin "$PLUGIN" run --config "$TMP/queue.json" --listen 127.0.0.1:0 \
		>"$TMP/run.out" 2>>"$TMP/queue-run.log" &
	RUN_PID=$!
	HOST="$(url_of "$TMP/run.out")" || die "mockhost run did not start: $(cat "$TMP/queue-run.log")"
	curl -sS --retry 20 --retry-connrefused --retry-delay 0 -o /dev/null "$HOST/-/ready"
}
BEFORE="$(curl -sS "$SINK/stats" | tr -d ' \n' | sed -n 's/.*"ingest":{[^}]*"accepted":\([0-9]*\).*/\1/p')"
# The endpoint is down (nothing listens on port 1): every profile is
# answered 200 once it is on disk, and waits there.
start_queued "http://127.0.0.1:1"
for i in 1 2 3; do
	expect_200 "SDK /ingest $i, endpoint down" "$(post -H 'Content-Type: application/octet-stream' \
		--data-binary @examples/profiles/cpu.pb.gz "$HOST/ingest?name=demo.queued%7Bn%3D$i%7D&format=pprof")"
done
for i in $(seq 1 50); do # the gauge is refreshed a few times a second
	BACKLOG="$(curl -sS "$HOST/metrics" | grep '^pyroscope_write_queue_backlog_profiles')"
	[ "${BACKLOG##* }" = 3 ] && break
	sleep 0.1
done
echo "   $BACKLOG"
kill -KILL "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || true
RUN_PID=""
echo "   mockhost run killed with SIGKILL; the queue directory, read without starting it:"
"$MOCKHOST" queue inspect --dir "$QDIR" | tr -d '\n' | sed 's/.*"records":\([0-9]*\),"profiles".*"cursors":/records \1, cursors /' | sed 's/^/     /'
echo
# Back with the endpoint reachable: the same name resumes its backlog.
start_queued "$SINK"
for i in $(seq 1 100); do
	NOW="$(curl -sS "$SINK/stats" | tr -d ' \n' | sed -n 's/.*"ingest":{[^}]*"accepted":\([0-9]*\).*/\1/p')"
	[ "$NOW" -ge $((BEFORE + 3)) ] && break
	sleep 0.1
done
[ "$NOW" = $((BEFORE + 3)) ] || die "expected the 3 queued profiles at the sink, got $((NOW - BEFORE))"
echo "   after the restart: $(curl -sS "$HOST/metrics" | grep -E '^pyroscope_write_queue_replayed_profiles_total')"
echo "   the sink received all 3 queued profiles"
kill -TERM "$RUN_PID"
wait "$RUN_PID" || die "mockhost run exited $?"
RUN_PID=""
echo
echo "demo: OK"
