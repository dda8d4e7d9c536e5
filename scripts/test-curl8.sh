#!/usr/bin/env bash
# Runs the test suite again on libcurl 8 (bookworm-backports, fetched by
# scripts/curl8.sh), with the binaries built against the system's libcurl
# 7.88: same soname, so LD_LIBRARY_PATH decides which one every test
# process, every mockhost it starts and the dlopen'ed plugin load. The abi
# suite checks, inside a test process, that the loaded one is libcurl 8.
#
# usage: scripts/test-curl8.sh [meson test arguments...]
#   BUILD=DIR  the build directory (default: build, set up when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
BUILD=${BUILD:-build}
libdir=$(scripts/curl8.sh --quiet)
version=$(LD_LIBRARY_PATH="$libdir" build-curl8/curl-version)
if [ ! -d "$BUILD" ]; then
	meson setup "$BUILD" --werror
fi
# Build first, without the other libcurl in the way of the tools.
meson compile -C "$BUILD"
echo "test-curl8.sh: running the suite on libcurl $version from $libdir" >&2
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PW_EXPECT_LIBCURL="$version" \
	meson test -C "$BUILD" --print-errorlogs "$@"
