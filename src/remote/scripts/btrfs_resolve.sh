# Args: SNAPDIR PATH... (absolute, checked by the controller)
# Read-only: for each PATH, `fs	PATH	FSTYPE	UUID	SUBVOLUME` (the btrfs
# subvolume that holds it: the first directory up from PATH whose inode is
# 256, as every subvolume's root is) or `missing	PATH`; and for SNAPDIR, or
# its nearest existing parent when it is not there yet, `snapdir	DIR
# FSTYPE	UUID`.
subvolume() { # DIR
	d=$1
	while :; do
		ino=$(stat -c %i -- "$d" 2>/dev/null) || return 1
		if [ "$ino" = 256 ]; then printf '%s' "$d"; return 0; fi
		[ "$d" = / ] && return 1
		d=$(dirname -- "$d")
	done
}
snapdir=$1
shift
for p in "$@"; do
	if [ ! -d "$p" ]; then printf 'missing\t%s\n' "$p"; continue; fi
	read -r fstype uuid <<EOF
$(findmnt -n -o FSTYPE,UUID -T "$p" 2>/dev/null)
EOF
	fstype=${fstype:--} uuid=${uuid:--} sub=-
	[ "$fstype" != btrfs ] || sub=$(subvolume "$p") || sub=-
	printf 'fs\t%s\t%s\t%s\t%s\n' "$p" "$fstype" "$uuid" "$sub"
done
d=$snapdir
while [ ! -d "$d" ] && [ "$d" != / ]; do d=$(dirname -- "$d"); done
read -r fstype uuid <<EOF
$(findmnt -n -o FSTYPE,UUID -T "$d" 2>/dev/null)
EOF
printf 'snapdir\t%s\t%s\t%s\n' "$d" "${fstype:--}" "${uuid:--}"
