# Args: DIR NAME SHA256 force|"" ; the hook's content on standard input.
# Writes one hook: temporary file in the same directory, checksum checked,
# root:root 0700, flushed, then renamed over the old one. A symlink or other
# non-regular file at the path is replaced only with `force`; it is never
# written through.
set -eu
dir=$1 name=$2 expected=$3 force=$4
target="$dir/$name"
if [ -L "$target" ] || { [ -e "$target" ] && [ ! -f "$target" ]; }; then
	if [ "$force" != force ]; then echo "$target is not a regular file; not replacing it without --force" >&2; exit 3; fi
	if [ -d "$target" ] && [ ! -L "$target" ]; then echo "$target is a directory; remove it by hand" >&2; exit 3; fi
fi
tmp=$(mktemp "$dir/.$name.quiesce-XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
actual=$(sha256sum < "$tmp" | cut -d' ' -f1)
if [ "$actual" != "$expected" ]; then echo "the upload arrived damaged (sha256 $actual)" >&2; exit 4; fi
chown root:root "$tmp"
chmod 0700 "$tmp"
sync "$tmp" 2>/dev/null || sync
mv -fT "$tmp" "$target"
trap - EXIT
sync "$dir" 2>/dev/null || :
