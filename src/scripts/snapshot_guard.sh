# Args: SECONDS COMMAND
# Runs COMMAND in a process group that dies with the controller: when the
# controller's end of this script's input closes (it stopped the run, gave up
# at its timeout, was killed, or its connection went away) or SECONDS pass,
# the whole group is killed, so no snapshot is ever taken after the thaw.
secs=$1 command=$2
exec 3<&0
(
	cat <&3 > /dev/null 2>&1
	kill -KILL 0
) > /dev/null 2>&1 &
watcher=$!
(
	sleep "$secs"
	kill -KILL 0
) > /dev/null 2>&1 3<&- &
timer=$!
sh -c "$command" < /dev/null 3<&-
rc=$?
kill "$watcher" "$timer" 2> /dev/null
exit "$rc"
