# Args: OWNER REASON PATH SHA[,SHA...] ARGS...
# Runs a checked copy of the hook at PATH with ARGS, as OWNER (see the hook's
# freeze ownership); exits 97 or 98 without running it when the check fails.
trap '' PIPE HUP
owner=$1 reason=$2 path=$3 shas=$4
shift 4
trap 'rm -rf "$WORK"' EXIT
checked_copy "$path" "$shas" || {
	rc=$?
	printf '%s; not running it\n' "$WHY" >&2
	exit "$rc"
}
QUIESCE_OWNER=$owner QUIESCE_REASON=$reason /bin/sh "$COPY" "$@"
rc=$?
exit "$rc"
