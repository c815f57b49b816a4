# Args: PATH MAX_BYTES DEVICE:INODE. Sent after log_writer.sh. The last
# MAX_BYTES of the file, decompressed if gzip'd, read as log_writer says
# (never as root from a directory another user can write) and only if the
# file opened is the one listed (a link or a swap since is refused, exit 5).
set -u
log_writer "${1%/*}"
if [ "$LOG_AS" = none ]; then
	printf '%s\n' "$LOG_WHY" >&2
	exit 4
fi
# shellcheck disable=SC2016 # expanded by the inner shell
log_as /bin/sh -c '
exec 3< "$1" || exit 3
id=$(stat -L -c %d:%i "/proc/$$/fd/3") || exit 3
if [ "$id" != "$3" ]; then
	printf "%s was replaced since it was listed: not read\n" "$1" >&2
	exit 5
fi
case $1 in
*.gz) gzip -dc <&3 | tail -c "$2" ;;
*) tail -c "$2" <&3 ;;
esac' sh "$@"
