# Args: SECONDS COMMAND
# Runs COMMAND in a process group that dies with the controller: when the
# controller's end of this script's input closes (it stopped the run, gave up
# at its timeout, was killed, or its connection went away) or SECONDS pass,
# the whole group gets SIGTERM (a hypervisor CLI may clean up) and, 2 s later,
# SIGKILL, so no snapshot is ever taken after the thaw. The command writes
# to files, relayed when it ends: a vanished controller never breaks its pipes.
secs=$1 command=$2
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT
end_group() {
	trap '' TERM
	kill -TERM 0
	sleep 2
	kill -KILL 0
}
exec 3<&0
(
	cat <&3 > /dev/null 2>&1
	end_group
) > /dev/null 2>&1 &
watcher=$!
(
	sleep "$secs"
	end_group
) > /dev/null 2>&1 3<&- &
timer=$!
sh -c "$command" < /dev/null > "$out/stdout" 2> "$out/stderr" 3<&-
rc=$?
kill "$watcher" "$timer" 2> /dev/null
cat "$out/stdout"
cat "$out/stderr" >&2
exit "$rc"
