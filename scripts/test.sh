#!/usr/bin/env bash
# Builds the project in build/ and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
BUILD=${BUILD:-build}
if [ ! -d "$BUILD" ]; then
	meson setup "$BUILD" --werror
fi
meson compile -C "$BUILD"
meson test -C "$BUILD" --print-errorlogs "$@"
