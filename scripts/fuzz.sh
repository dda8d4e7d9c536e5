#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each for FUZZ_SECONDS
# (default 20) on its seed corpus. Crashes fail the script and leave the
# reproducer in fuzz/artifacts/. For long runs: FUZZ_SECONDS=3600 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-20}
OUT=build-fuzz
mkdir -p "$OUT" fuzz/artifacts
cat > "$OUT/pw_version.h" <<H
#define PW_VERSION "fuzz"
H
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$OUT -Iinclude -Iplugin-abi -Isrc -Isrc/mockhost"
CORE="src/config.c src/config_check.c src/config_diag.c src/config_json.c src/config_opts.c src/duration.c src/filewatch.c src/labels.c src/proto.c src/retry.c src/strbuf.c"
LIBS="-ljansson -lz -lpthread -lm"

build() { # name, sources...
	local name=$1; shift
	# shellcheck disable=SC2086
	clang $CFLAGS "$@" -o "$OUT/$name" $LIBS
}

build fuzz_config fuzz/fuzz_config.c $CORE
build fuzz_alloy fuzz/fuzz_alloy.c src/mockhost/alloy.c src/mockhost/alloy_lex.c src/strbuf.c
build fuzz_labels fuzz/fuzz_labels.c $CORE
build fuzz_retry fuzz/fuzz_retry.c $CORE
# The decoders that request bytes reach first in `mockhost run` and `sink`.
# standin_gunzip lives in src/standin/httpd.c.
STANDIN="src/standin/formats.c src/standin/httpd.c"
build fuzz_push fuzz/fuzz_push.c $CORE $STANDIN
build fuzz_ingest fuzz/fuzz_ingest.c $CORE src/mockhost/sdkname.c $STANDIN
build fuzz_formats fuzz/fuzz_formats.c src/strbuf.c $STANDIN

for h in config alloy labels retry push ingest formats; do
	corpus="$OUT/corpus-$h"
	mkdir -p "$corpus"
	cp -n fuzz/corpus/$h/* "$corpus/" 2>/dev/null || true
	echo "fuzzing $h for ${SECS}s"
	"$OUT/fuzz_$h" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=fuzz/artifacts/ -print_final_stats=0 "$corpus" 2>"$OUT/fuzz_$h.log" \
		|| { tail -50 "$OUT/fuzz_$h.log"; exit 1; }
	grep -E "^#[0-9]+.*DONE" "$OUT/fuzz_$h.log" | tail -1 || true
done
