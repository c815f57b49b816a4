# Args: DIR SOURCE NAME [SOURCE NAME...]
# While the instances are frozen: a read-only snapshot of each SOURCE
# subvolume as DIR/NAME, in the order given (the journals last: they are
# written on during the freeze). Each one made is said as
# `quiesce-snapshot-id DIR/NAME` and, once `btrfs subvolume show` finds it
# (it is then on disk: durable), `btrfs-made	DIR/NAME	UUID	CREATED`.
# A failure removes what this call made and exits 1: no orphan is left.
dir=$1
shift
[ -d "$dir" ] || mkdir -m 0700 -- "$dir" || exit 1
made=''
undo() {
	for m in $made; do btrfs subvolume delete -- "$m" > /dev/null 2>&1 || echo "could not remove $m: remove it by hand (btrfs subvolume delete $m)" >&2; done
	exit 1
}
while [ $# -ge 2 ]; do
	src=$1 to=$dir/$2
	shift 2
	if ! btrfs subvolume snapshot -r -- "$src" "$to" > /dev/null; then
		echo "btrfs subvolume snapshot -r $src $to failed" >&2
		undo
	fi
	made="$made $to"
	printf 'quiesce-snapshot-id %s\n' "$to"
	shown=$(btrfs subvolume show -- "$to" 2>&1) || { echo "$to is not there after its snapshot: $shown" >&2; undo; }
	printf '%s\n' "$shown" | awk -v p="$to" -F': *' '
		$1 ~ /^[ \t]*UUID$/ { u = $2 } $1 ~ /^[ \t]*Creation time$/ { c = $2 }
		END { printf "btrfs-made\t%s\t%s\t%s\n", p, u, c }'
done
