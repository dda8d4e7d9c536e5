#!/usr/bin/env bash
# Fetches libcurl 8 (Debian's bookworm-backports package libcurl4, the
# version Debian 13 ships) into a folder, beside the system's libcurl 7.88,
# which stays installed and in use. The soname is the same (libcurl.so.4),
# so a process loads the newer one when its folder is in LD_LIBRARY_PATH.
#
# usage: scripts/curl8.sh [--dir DIR] [--quiet] [--dev]
#   --dir DIR  where to keep the download and the unpacked tree
#              (default: build-curl8 in the source root)
#   --quiet    print only the library folder
#   --dev      also the headers (libcurl4-openssl-dev), with a libcurl.pc
#              in LIBDIR/pkgconfig for building against libcurl 8:
#              PKG_CONFIG_PATH=LIBDIR/pkgconfig meson setup ...
#
# Prints the folder to put in LD_LIBRARY_PATH on its last line. Runs again
# without downloading when the unpacked tree is there and still loads.
#
# The backports suite is used for this download only: apt reads a sources
# list and package lists of its own under DIR/apt, never the system's, and
# nothing is installed with dpkg -i.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/build-curl8"
quiet=0
dev=0
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir="$2"; shift ;;
	--quiet) quiet=1 ;;
	--dev) dev=1 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "curl8.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

SUITE=bookworm-backports
MIRROR=${CURL8_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
apt_dir="$dir/apt"
debs="$dir/debs"
tree="$dir/root"
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
libdir="$tree/usr/lib/$multiarch"

say() { [ "$quiet" = 1 ] || echo "curl8.sh: $*" >&2; }

# apt, pointed at the backports suite alone. Dir::Cache keeps apt's own
# package cache out of the system's too.
apt_opts=(
	-q
	-o "Dir::Etc::sourcelist=$apt_dir/sources.list"
	-o "Dir::Etc::sourceparts=-"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Cache=$apt_dir/cache"
	-o "APT::Get::List-Cleanup=0"
	-o "Debug::NoLocking=1"
	-o "APT::Sandbox::User=root"
)

apt_update() {
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$apt_dir/sources.list"
	say "reading the package list of $SUITE"
	apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 ||
		{ cat "$apt_dir/update.log" >&2; exit 1; }
}

# Downloads PACKAGE from the backports suite into $debs (once) and unpacks it.
fetch() {
	local pkg=$1 deb
	deb=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | head -1)
	if [ -z "$deb" ]; then
		say "downloading $pkg/$SUITE"
		(cd "$debs" && apt-get "${apt_opts[@]}" download "$pkg/$SUITE" >/dev/null)
		deb=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | head -1)
		[ -n "$deb" ] || { echo "curl8.sh: $pkg did not download" >&2; exit 1; }
	fi
	dpkg -x "$deb" "$tree"
}

# The dependencies of a downloaded package that the system does not meet:
# missing, or older than the package asks for. Alternatives (a | b) are
# met by any installed one; an unmet one is fetched by its first name.
unmet_deps() {
	local deb=$1 dep alt name op ver have met
	dpkg-deb -f "$deb" Depends | tr ',' '\n' | while read -r dep; do
		[ -n "$dep" ] || continue
		met=0
		IFS='|' read -ra alts <<<"$dep"
		for alt in "${alts[@]}"; do
			read -r name op ver <<<"$(sed -E 's/^ *([^ (]+) *(\(([<>=]+) *([^)]+)\))?.*/\1 \3 \4/' <<<"$alt")"
			name=${name%%:*}
			have=$(dpkg-query -W -f='${Status} ${Version}\n' "$name" 2>/dev/null |
				awk '/ok installed/ {print $4}')
			[ -n "$have" ] || continue
			if [ -z "$op" ] || dpkg --compare-versions "$have" "$op" "$ver"; then
				met=1
				break
			fi
		done
		[ "$met" = 1 ] || sed -E 's/^ *([^ (|]+).*/\1/' <<<"$dep"
	done
}

# Prints the version of libcurl that a process loads with $libdir in
# LD_LIBRARY_PATH, from a five-line program built against the system's
# headers (the ABI is the same).
loaded_version() {
	local prog="$dir/curl-version" flags
	if [ ! -x "$prog" ] || [ "$prog" -ot "$0" ]; then
		cat >"$dir/curl-version.c" <<'C'
#include <curl/curl.h>
#include <stdio.h>
int main(void) { puts(curl_version_info(CURLVERSION_NOW)->version); return 0; }
C
		read -ra flags <<<"$(pkg-config --cflags --libs libcurl)"
		cc -o "$prog" "$dir/curl-version.c" "${flags[@]}"
	fi
	LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$prog"
}

# Every library that libcurl needs must resolve, with the symbol versions it
# asks for; ldd names what does not.
check_ldd() {
	local out
	out=$(LD_LIBRARY_PATH="$libdir" ldd "$libdir/libcurl.so.4" 2>&1)
	if grep -E 'not found' <<<"$out" >&2; then
		return 1
	fi
}

# The headers and a pkg-config file that points into the unpacked tree. The
# private requirements are dropped: the build links the shared library, and
# their -dev packages are not needed for that.
fetch_dev() {
	local pc="$libdir/pkgconfig/libcurl.pc" want have
	want=$(dpkg-deb -f "$(find "$debs" -maxdepth 1 -name 'libcurl4_*.deb' | head -1)" Version)
	if [ -z "$(find "$debs" -maxdepth 1 -name 'libcurl4-openssl-dev_*.deb')" ]; then
		apt_update
	fi
	fetch libcurl4-openssl-dev
	have=$(dpkg-deb -f "$(find "$debs" -maxdepth 1 -name 'libcurl4-openssl-dev_*.deb' | head -1)" Version)
	if [ "$have" != "$want" ]; then
		echo "curl8.sh: headers $have do not match the library $want; remove $dir and run again" >&2
		exit 1
	fi
	# shellcheck disable=SC2016 # ${prefix} is pkg-config's, not the shell's
	sed -i -e "s|^prefix=.*|prefix=$tree/usr|" -e 's|^includedir=/usr/|includedir=${prefix}/|' \
		-e '/^Requires.private:/d' "$pc"
	say "headers of libcurl $have: PKG_CONFIG_PATH=$libdir/pkgconfig"
}

installed() {
	[ -e "$libdir/libcurl.so.4" ] && check_ldd 2>/dev/null &&
		[[ "$(loaded_version 2>/dev/null)" == 8.* ]]
}

if installed; then
	say "libcurl $(loaded_version) already in $libdir"
else
	mkdir -p "$debs" "$tree"
	apt_update
	fetch libcurl4
	# Backports packages for what the system's libraries do not meet, and
	# for theirs in turn.
	todo=(libcurl4)
	done_pkgs=" libcurl4 "
	while [ "${#todo[@]}" -gt 0 ]; do
		pkg=${todo[0]}
		todo=("${todo[@]:1}")
		deb=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | head -1)
		for dep in $(unmet_deps "$deb"); do
			case "$done_pkgs" in *" $dep "*) continue ;; esac
			say "$pkg needs a newer $dep than the system has"
			fetch "$dep"
			done_pkgs+="$dep "
			todo+=("$dep")
		done
	done
	check_ldd || { echo "curl8.sh: libcurl 8 does not load (above)" >&2; exit 1; }
fi

[ "$dev" = 1 ] && fetch_dev

version=$(loaded_version)
case "$version" in
8.*) ;;
*)
	echo "curl8.sh: a process with LD_LIBRARY_PATH=$libdir loads libcurl $version, not 8.x" >&2
	exit 1
	;;
esac
say "libcurl $version loads from $libdir (system: $(curl-config --version 2>/dev/null | cut -d' ' -f2))"
echo "$libdir"
