#!/usr/bin/env bash
# cppcheck over the sources, with the checks the project keeps clean.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cppcheck >/dev/null || { echo "cppcheck is missing: run scripts/deps.sh" >&2; exit 1; }
cppcheck --quiet --error-exitcode=1 --std=c11 --language=c \
	--enable=warning,portability,performance \
	--inline-suppr --suppress=missingIncludeSystem \
	-I include -I plugin-abi -I src -I src/mockhost \
	src
