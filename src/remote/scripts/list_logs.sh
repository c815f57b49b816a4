# Args: LOG_DIR SINCE (epoch seconds). One line per log file written since:
# NAME SIZE MTIME (tab-separated).
set -u
dir=$1 since=$2
for f in "$dir"/snapshot.log "$dir"/snapshot.log.* "$dir"/*-pre_post.log "$dir"/*-pre_post.log.*; do
	if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
	m=$(stat -c %Y -- "$f") || continue
	[ "$m" -ge "$since" ] || continue
	printf '%s\t%s\t%s\n' "$(basename -- "$f")" "$(stat -c %s -- "$f")" "$m"
done
