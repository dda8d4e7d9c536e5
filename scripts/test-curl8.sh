#!/usr/bin/env bash
# Runs the test suite again on libcurl 8 (bookworm-backports, fetched by
# scripts/curl8.sh), with the binaries built against the system's libcurl
# 7.88: same soname, so LD_LIBRARY_PATH decides which one every test
# process, every mockhost it starts and the dlopen'ed plugin load. The abi
# suite checks, inside a test process, that the loaded one is libcurl 8.
#
# usage: scripts/test-curl8.sh [--headers] [meson test arguments...]
#   --headers  build against libcurl 8's own headers instead, in
#              build-curl8-headers (warnings as errors, as always)
#   BUILD=DIR  the build directory (default: build, set up when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
headers=0
if [ "${1:-}" = --headers ]; then
	headers=1
	shift
fi
if [ "$headers" = 1 ]; then
	BUILD=${BUILD:-build-curl8-headers}
	libdir=$(scripts/curl8.sh --quiet --dev)
	if [ ! -d "$BUILD" ]; then
		PKG_CONFIG_PATH="$libdir/pkgconfig" meson setup "$BUILD" --werror
	fi
	grep -q "libcurl found: YES 8\." "$BUILD/meson-logs/meson-log.txt" ||
		{ echo "test-curl8.sh: $BUILD is not configured against libcurl 8" >&2; exit 1; }
else
	BUILD=${BUILD:-build}
	libdir=$(scripts/curl8.sh --quiet)
	if [ ! -d "$BUILD" ]; then
		meson setup "$BUILD" --werror
	fi
fi
version=$(LD_LIBRARY_PATH="$libdir" build-curl8/curl-version)
# Build first, without the other libcurl in the way of the tools.
meson compile -C "$BUILD"
echo "test-curl8.sh: running the suite on libcurl $version from $libdir" >&2
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PW_EXPECT_LIBCURL="$version" \
	meson test -C "$BUILD" --print-errorlogs "$@"
