# Args: PATH... Prints one line per path: `missing PATH`, or
# `entry PATH TYPE OWNER GROUP MODE SIZE SHA256|- LINK-TARGET|-` (tab-separated).
# Never follows a symlink: stat without -L, and a checksum only of regular files.
for p in "$@"; do
	if [ ! -e "$p" ] && [ ! -L "$p" ]; then printf 'missing\t%s\n' "$p"; continue; fi
	info=$(stat -c '%F	%U	%G	%a	%s' -- "$p") || { printf 'error\t%s\tstat failed\n' "$p"; continue; }
	sum=- target=-
	if [ -f "$p" ] && [ ! -L "$p" ]; then sum=$(sha256sum < "$p" | cut -d' ' -f1); fi
	if [ -L "$p" ]; then target=$(readlink -- "$p"); target=$(printf '%s' "$target" | tr '\t\n' '  '); fi
	printf 'entry\t%s\t%s\t%s\t%s\n' "$p" "$info" "$sum" "$target"
done
