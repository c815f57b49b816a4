# Args: DIR
# Read-only: each snapshot quiesce made in DIR (`quiesce@…`), as
# `snap	NAME	UUID	CREATED	FLAGS`; nothing when DIR is not there.
[ -d "$1" ] || exit 0
for p in "$1"/quiesce@*; do
	[ -d "$p" ] || continue
	btrfs subvolume show -- "$p" 2>/dev/null | awk -v n="${p##*/}" -F': *' '
		$1 ~ /^[ \t]*UUID$/ { u = $2 } $1 ~ /^[ \t]*Creation time$/ { c = $2 } $1 ~ /^[ \t]*Flags$/ { f = $2 }
		END { if (u != "") printf "snap\t%s\t%s\t%s\t%s\n", n, u, c, f }'
done
