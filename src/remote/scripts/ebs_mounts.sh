# Args: VOLUME... (EBS volume ids). Read-only: where each volume is mounted
# on this instance, found by the name a Nitro instance gives it (its serial
# is the volume id), or one of its partitions. Says `vol VOLUME MOUNTPOINT`
# per volume, `-` for one not attached or not mounted here.
tab=$(printf '\t')
for v in "$@"; do
	case $v in vol-*) ;; *) continue ;; esac
	base=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol${v#vol-}
	at=-
	for d in "$base" "$base"-part*; do
		[ -e "$d" ] || continue
		dev=$(readlink -f -- "$d") || continue
		m=$(findmnt -n -o TARGET --source "$dev" 2> /dev/null | head -n 1)
		if [ -n "$m" ]; then
			at=$m
			break
		fi
	done
	printf 'vol%s%s%s%s\n' "$tab" "$v" "$tab" "$at"
done
