# Args: LOG_DIR SINCE (epoch seconds). Sent after log_writer.sh. One line per
# log file written since: NAME SIZE MTIME DEVICE:INODE (tab-separated); the
# fetch reads that inode and no other. A directory root may not open files
# in (log_writer) is one line: unsafe WHY.
set -u
dir=$1 since=$2
log_writer "$dir"
if [ "$LOG_AS" = none ]; then
	printf 'unsafe\t%s\n' "$LOG_WHY"
	exit 0
fi
set +f
for f in "$dir"/snapshot.log "$dir"/snapshot.log.* "$dir"/*-pre_post.log "$dir"/*-pre_post.log.*; do
	if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
	meta=$(stat -c '%s %Y %d:%i' -- "$f") || continue
	size=${meta%% *} rest=${meta#* }
	m=${rest%% *} id=${rest#* }
	[ "$m" -ge "$since" ] || continue
	printf '%s\t%s\t%s\t%s\n' "${f##*/}" "$size" "$m" "$id"
done
