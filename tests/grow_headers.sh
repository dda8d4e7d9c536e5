#!/bin/sh
# Writes copies of the ABI headers in which every struct that starts with a
# struct_size field has one more field at its end, as a later version of
# the ABI would add it. Used by the abi_grow suite only.
# Usage: grow_headers.sh OUTDIR HEADER...
set -eu
out=$1
shift
for h in "$@"; do
	awk '
	/^struct [a-z_]+ \{$/ { inside = 1; sized = 0 }
	inside && /^\tuint32_t struct_size;/ { sized = 1 }
	inside && /^};$/ {
		inside = 0
		if (sized)
			print "\tuint64_t grown_field; /* appended by tests/grow_headers.sh */"
	}
	{ print }
	' "$h" >"$out/$(basename "$h")"
done
