#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, when
# they are missing. Safe to run again; needs root (or sudo) only when
# something is missing.
set -euo pipefail

PACKAGES=(
	build-essential g++ meson ninja-build pkg-config clang libclang-rt-14-dev
	clang-format cppcheck git
	libcurl4-openssl-dev libssl-dev libjansson-dev zlib1g-dev check
	libmicrohttpd-dev libgnutls28-dev
	protobuf-compiler valgrind curl openssl binutils
	nginx-light tinyproxy prometheus wrk
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# Services that packages start are not wanted: the tests start their own.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
