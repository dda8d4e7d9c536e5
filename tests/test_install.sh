#!/usr/bin/env bash
# Installs the project with a custom prefix, first into a temporary DESTDIR
# and then for real into a temporary prefix, and checks what a packager and a
# host author rely on: the layout, the pkg-config file, the man page, that
# the installed example host builds out of tree against the installed headers
# and pushes a profile through the installed plugin, and that the installed
# mockhost finds the installed plugin without being told where it is.
#
# usage: test_install.sh [SOURCE_ROOT]    (default: PW_SOURCE_ROOT, else ..)
set -euo pipefail

SRC=${1:-${PW_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}}
T=$(mktemp -d "${TMPDIR:-/tmp}/pw-install.XXXXXX")
PREFIX=$T/prefix
DEST=$T/destdir
BUILD=$T/build
SINK_PID=

cleanup() {
	if [ -n "$SINK_PID" ]; then
		kill "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
step() { echo "== $*"; }
need_file() { [ -f "$1" ] || fail "not installed: ${1#"$DEST"}"; }

# A library directory other than the default shows that everything follows
# --libdir rather than a hard-coded "lib".
LIBDIR=lib64

step "configure and build with --prefix $PREFIX --libdir $LIBDIR"
meson setup "$BUILD" "$SRC" --prefix "$PREFIX" --libdir "$LIBDIR" >"$T/setup.log" 2>&1 ||
	{ cat "$T/setup.log"; fail "meson setup"; }
meson compile -C "$BUILD" pyroscope_write mockhost >"$T/compile.log" 2>&1 ||
	{ cat "$T/compile.log"; fail "meson compile"; }

step "install into DESTDIR"
meson install -C "$BUILD" --no-rebuild --destdir "$DEST" >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; fail "meson install --destdir"; }

R=$DEST$PREFIX
DOC=$R/share/doc/pyroscope-write
PLUGINDIR=$PREFIX/$LIBDIR/component-plugins

step "layout"
# DESTDIR is honoured: nothing lands outside DESTDIR/PREFIX.
stray=$(find "$DEST" ! -type d ! -path "$R/*")
[ -z "$stray" ] || fail "installed outside the prefix: $stray"
need_file "$DEST$PLUGINDIR/pyroscope_write.so"
[ -x "$R/bin/mockhost" ] || fail "mockhost not installed in bindir"
need_file "$R/include/pyroscope-write/component_abi.h"
need_file "$R/include/pyroscope-write/pyroscope_write.h"
need_file "$R/$LIBDIR/pkgconfig/pyroscope-write.pc"
need_file "$R/share/man/man1/mockhost.1"
for f in README.md CHANGELOG.md LICENSE; do
	need_file "$DOC/$f"
done
for f in "$SRC"/docs/*.md; do
	need_file "$DOC/$(basename "$f")"
done
for f in "$SRC"/examples/*.json "$SRC"/examples/*.alloy "$SRC"/examples/minimal_host.c \
	"$SRC"/examples/profiles/*; do
	need_file "$DOC/examples/${f#"$SRC"/examples/}"
done
[ ! -e "$DOC/examples/meson.build" ] || fail "examples/meson.build was installed"
[ ! -e "$DOC/mockhost.1.in" ] || fail "the man page template was installed as a doc"

# The plugin exports exactly one symbol, the entry point.
syms=$(nm -D --defined-only "$DEST$PLUGINDIR/pyroscope_write.so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
[ "$syms" = "component_plugin_entry" ] || fail "plugin exports: $syms"

step "man page"
man=$R/share/man/man1/mockhost.1
! grep -q '@[A-Z]*@' "$man" || fail "unsubstituted placeholder in mockhost.1"
grep -q -F "$PLUGINDIR/pyroscope_write.so" "$man" || fail "mockhost.1 does not name $PLUGINDIR"
if command -v groff >/dev/null; then
	warnings=$(groff -man -ww -z "$man" 2>&1)
	[ -z "$warnings" ] || fail "groff warnings in mockhost.1: $warnings"
fi

step "pkg-config"
version=$("$R/bin/mockhost" --plugin "$DEST$PLUGINDIR/pyroscope_write.so" --version |
	sed -n 's/^mockhost \([^ ]*\) .*/\1/p')
[ -n "$version" ] || fail "mockhost --version printed no version"
# Only the installed .pc file, relocated into DESTDIR.
export PKG_CONFIG_LIBDIR=$R/$LIBDIR/pkgconfig
unset PKG_CONFIG_PATH
pc() { pkg-config --define-variable=prefix="$R" "$@" pyroscope-write; }
[ "$(pc --modversion)" = "$version" ] || fail "pkg-config version $(pc --modversion) != $version"
cflags=$(pc --cflags | sed "s/ *$//")
[ "$cflags" = "-I$R/include/pyroscope-write" ] || fail "unexpected cflags: $cflags"
pc_plugindir=$(pc --variable=plugindir)
[ "$pc_plugindir" = "$DEST$PLUGINDIR" ] || fail "plugindir $pc_plugindir != $DEST$PLUGINDIR"

step "build the installed example host out of tree"
# Strict C11 and no include path but what pkg-config gives.
# shellcheck disable=SC2086 # cflags is a list of words
${CC:-cc} -std=c11 -Wall -Wextra -Wpedantic -Werror $cflags \
	-DPW_DEFAULT_PLUGIN_DIR="\"$pc_plugindir\"" \
	"$DOC/examples/minimal_host.c" -o "$T/minimal_host" -ldl ||
	fail "examples/minimal_host.c does not build against the installed headers"

step "start a sink"
"$R/bin/mockhost" sink --listen 127.0.0.1:0 --dir "$T/sink" >"$T/sink.out" 2>&1 &
SINK_PID=$!
url=
for _ in $(seq 100); do
	url=$(sed -n 's/^sink listening on \(http:[^ ]*\).*/\1/p' "$T/sink.out")
	[ -n "$url" ] && break
	kill -0 "$SINK_PID" 2>/dev/null || { cat "$T/sink.out"; fail "the sink exited"; }
	sleep 0.1
done
[ -n "$url" ] || fail "the sink printed no URL"
config="{\"endpoint\": {\"url\": \"$url\"}}"
profile=$SRC/examples/profiles/cpu.pb.gz

step "the example host pushes through the installed plugin (default path)"
out=$("$T/minimal_host" "$config" install-example "$profile") ||
	{ echo "$out"; fail "minimal_host failed"; }
echo "$out"
grep -q -F "loaded pyroscope.write $version" <<<"$out" || fail "minimal_host did not load the plugin"
grep -q -x 'push: success' <<<"$out" || fail "minimal_host push did not succeed"
grep -q -x 'health: healthy' <<<"$out" || fail "minimal_host did not report health"
grep -l -F '"install-example"' "$T"/sink/push-*.json >/dev/null 2>&1 ||
	fail "the sink did not receive service_name=install-example"

step "the example host refuses a missing plugin and bad usage"
if "$T/minimal_host" -p "$T/nonexistent.so" "$config" x "$profile" >/dev/null 2>&1; then
	fail "minimal_host succeeded without a plugin"
fi
set +e
"$T/minimal_host" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || fail "minimal_host without arguments exited $rc, want 2"

step "install for real into the prefix; mockhost finds the plugin by default"
meson install -C "$BUILD" --no-rebuild >>"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; fail "meson install"; }
"$PREFIX/bin/mockhost" --version | tee "$T/version.out"
grep -q -F "plugin $PLUGINDIR/pyroscope_write.so: pyroscope.write $version (" "$T/version.out" ||
	fail "installed mockhost does not load $PLUGINDIR/pyroscope_write.so by default"
echo "$config" >"$T/config.json"
"$PREFIX/bin/mockhost" push --config "$T/config.json" --label service_name=install-mockhost \
	--profile "$profile" || fail "installed mockhost push failed"
grep -l -F '"install-mockhost"' "$T"/sink/push-*.json >/dev/null 2>&1 ||
	fail "the sink did not receive service_name=install-mockhost"

echo "ok"
