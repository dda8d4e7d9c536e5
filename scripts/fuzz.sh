#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each for FUZZ_SECONDS
# (default 20) on its seed corpus. Crashes fail the script and leave the
# reproducer in fuzz/artifacts/. For long runs: FUZZ_SECONDS=3600 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-20}
OUT=build-fuzz
HARNESSES="config alloy labels retry push ingest formats reqparse queue"
mkdir -p fuzz/artifacts
# The harnesses and the code they test are built by meson (fuzz/meson.build).
if [ ! -f "$OUT/build.ninja" ]; then
	CC=clang meson setup "$OUT" -Dfuzz=true >/dev/null
fi
targets=()
for h in $HARNESSES; do targets+=("fuzz/fuzz_$h"); done
meson compile -C "$OUT" "${targets[@]}" >/dev/null

for h in $HARNESSES; do
	corpus="$OUT/corpus-$h"
	mkdir -p "$corpus"
	cp -n fuzz/corpus/$h/* "$corpus/" 2>/dev/null || true
	echo "fuzzing $h for ${SECS}s"
	"$OUT/fuzz/fuzz_$h" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=fuzz/artifacts/ -print_final_stats=0 "$corpus" 2>"$OUT/fuzz_$h.log" \
		|| { tail -50 "$OUT/fuzz_$h.log"; exit 1; }
	grep -E "^#[0-9]+.*DONE" "$OUT/fuzz_$h.log" | tail -1 || true
done
