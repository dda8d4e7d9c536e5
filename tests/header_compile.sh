#!/bin/sh
# The public headers compile on their own as strict C99 and as C++.
set -eu
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in plugin-abi/component_abi.h include/pyroscope_write.h; do
	printf '#include "%s"\nint main(void) { return 0; }\n' "$root/$h" > "$tmp/t.c"
	cc -std=c99 -pedantic -Wall -Wextra -Werror -I"$root/plugin-abi" -I"$root/include" \
		-c "$tmp/t.c" -o "$tmp/t.o"
	c++ -x c++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$root/plugin-abi" -I"$root/include" \
		-c "$tmp/t.c" -o "$tmp/t.o"
	echo "ok: $h (C99, C++11)"
done
