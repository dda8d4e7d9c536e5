#!/usr/bin/env bash
# cppcheck over the sources, with the checks the project keeps clean.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cppcheck >/dev/null; then
	apt-get install -y -q cppcheck >/dev/null
fi
cppcheck --quiet --error-exitcode=1 --std=c11 --language=c \
	--enable=warning,portability,performance \
	--inline-suppr --suppress=missingIncludeSystem \
	-I include -I plugin-abi -I src -I src/mockhost \
	src
