# Args: DIR NAME...
# Removes each snapshot DIR/NAME quiesce made (NAME `quiesce@…`, no `/`):
# `deleted	NAME`, or `failed	NAME	WHY`.
dir=$1
shift
for n in "$@"; do
	case $n in quiesce@*/* | */* | '') printf 'failed\t%s\tnot a snapshot name of quiesce\n' "$n"; continue ;; quiesce@*) ;; *) printf 'failed\t%s\tnot a snapshot name of quiesce\n' "$n"; continue ;; esac
	if why=$(btrfs subvolume delete -- "$dir/$n" 2>&1); then
		printf 'deleted\t%s\n' "$n"
	else
		printf 'failed\t%s\t%s\n' "$n" "$(printf '%s' "$why" | tr '\t\n' '  ')"
	fi
done
