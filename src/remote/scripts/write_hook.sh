# Args: DIR NAME SHA256 SIZE FORCE; the hook's content is the next SIZE bytes
# of standard input (what follows is left for the next hook). Writes one
# hook: temporary file in the same directory, checksum checked, root:root
# 0700, flushed, then renamed over the old one. A symlink or other
# non-regular file at the path is replaced only with FORCE=force; it is
# never written through. Runs in a subshell of deploy.sh (its exits end
# only this hook's write).
set -eu
dir=$1 name=$2 expected=$3 size=$4 force=$5
target="$dir/$name"
if [ -L "$target" ] || { [ -e "$target" ] && [ ! -f "$target" ]; }; then
	if [ "$force" != force ]; then echo "$target is not a regular file; not replacing it without --force" >&2; exit 3; fi
	if [ -d "$target" ] && [ ! -L "$target" ]; then echo "$target is a directory; remove it by hand" >&2; exit 3; fi
fi
tmp=$(mktemp "$dir/.$name.quiesce-XXXXXX")
trap 'rm -f "$tmp"' EXIT
# dd, not cat or head: it reads exactly SIZE bytes, never past them.
dd bs="$size" count=1 iflag=fullblock status=none of="$tmp"
actual=$(sha256sum < "$tmp" | cut -d' ' -f1)
if [ "$actual" != "$expected" ]; then echo "the upload arrived damaged (sha256 $actual)" >&2; exit 4; fi
chown root:root "$tmp"
chmod 0700 "$tmp"
sync "$tmp" 2>/dev/null || sync
mv -fT "$tmp" "$target"
trap - EXIT
sync "$dir" 2>/dev/null || :
