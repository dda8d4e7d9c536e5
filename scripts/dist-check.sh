#!/usr/bin/env bash
# Makes the release tarball with `meson dist` and shows that it is complete:
# unpacks it in a temporary directory, builds it there from scratch with
# warnings as errors and runs its test suite. Arguments go to `meson test`
# (for example --no-suite peers).
#
# `meson dist` packs the last git commit: uncommitted changes are not in the
# tarball. The tarball and its checksum stay in $DIST_BUILD/meson-dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${DIST_BUILD:-build-dist}

if [ ! -d "$BUILD" ]; then
	meson setup "$BUILD" >/dev/null
fi
dirty=()
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	echo "dist-check: the working tree has uncommitted changes; the tarball holds the last commit only" >&2
	dirty=(--allow-dirty)
fi
rm -rf "$BUILD/meson-dist"
# Tests run below, from the unpacked tree, with the options given here.
meson dist -C "$BUILD" --no-tests --formats xztar "${dirty[@]}"

shopt -s nullglob
tarballs=("$BUILD"/meson-dist/*.tar.xz)
if [ "${#tarballs[@]}" -ne 1 ]; then
	echo "dist-check: expected one tarball in $BUILD/meson-dist" >&2
	exit 1
fi
tarball=$(realpath "${tarballs[0]}")
(cd "$BUILD/meson-dist" && sha256sum --quiet -c "$(basename "$tarball").sha256sum")

T=$(mktemp -d "${TMPDIR:-/tmp}/pw-dist.XXXXXX")
trap 'rm -rf "$T"' EXIT
tar -C "$T" -xf "$tarball"
src=$(find "$T" -mindepth 1 -maxdepth 1 -type d)
for f in LICENSE CHANGELOG.md README.md meson.build docs/mockhost.1.in examples/minimal_host.c; do
	if [ ! -f "$src/$f" ]; then
		echo "dist-check: $f is missing from the tarball" >&2
		exit 1
	fi
done

echo "dist-check: building $(basename "$tarball") from a clean unpack"
meson setup "$T/build" "$src" --werror >/dev/null
meson compile -C "$T/build"
meson test -C "$T/build" --print-errorlogs "$@"
echo "dist-check: ok: $tarball"
