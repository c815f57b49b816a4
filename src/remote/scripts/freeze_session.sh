# Args: OWNER TIMEOUT DEADLINE PRE_PATH PRE_SHAS POST_PATH POST_SHAS
# The freeze of one VM and its dead-man's switch, in one session. Checks the
# thaw hook first (a VM that could not be thawed is never frozen; it is
# checked again when it runs), then runs the checked pre-freeze-script as OWNER with a freeze timeout of TIMEOUT seconds
# and says `quiesce-freeze STATUS`. Then it waits for one word on its input,
# `thaw`, `thawDeferred` or `freezeFail`, and runs the checked post-thaw-script with it. When
# the controller is gone (end of input) or silent for DEADLINE seconds from
# the start (a network split, where no end of input ever comes), it runs
# freezeFail by itself, before the instance would pause. It ends with
# `quiesce-thaw STATUS ACTION`. Everything after the freeze survives a
# vanished controller: broken pipes and hang-ups are ignored.
trap '' PIPE HUP
owner=$1 timeout=$2 deadline=$3 pre=$4 pre_shas=$5 post=$6 post_shas=$7
# Seconds since boot, not the wall clock: NTP or VMware time sync stepping the
# clock during the freeze must not move the dead-man's switch.
mono() {
	if read -r up _ < /proc/uptime 2>/dev/null; then printf '%s\n' "${up%.*}"; else date +%s; fi
}
started=$(mono)
say() { printf '%s\n' "$*" 2>/dev/null || :; }
trap 'rm -rf "$WORK"' EXIT
refuse() { # STATUS HOOK
	say "quiesce-unchecked $2"
	printf '%s; not freezing\n' "$WHY" >&2
	exit "$1"
}
checked_copy "$post" "$post_shas" || refuse $? post-thaw-script
checked_copy "$pre" "$pre_shas" || refuse $? pre-freeze-script
# A freeze whose answer could not be kept is not made.
if ! { : > "$WORK/freeze.out" && : > "$WORK/freeze.err"; } 2> /dev/null; then
	WHY="no room for the freeze's answer in $WORK (is the disk full?)"
	refuse 98 pre-freeze-script
fi
QUIESCE_OWNER=$owner QUIESCE_FREEZE_SECONDS=$timeout /bin/sh "$COPY" freeze > "$WORK/freeze.out" 2> "$WORK/freeze.err"
rc=$?
cat "$WORK/freeze.out" 2> /dev/null || :
# In band, before the status: stdout and stderr are not ordered over SSH.
sed 's/^/quiesce-err /' "$WORK/freeze.err" 2> /dev/null || :
say "quiesce-freeze $rc"
# 3: another owner's freeze holds the VM; this run froze nothing there.
[ "$rc" = 3 ] && exit 3

left=$((deadline - ($(mono) - started)))
[ "$left" -le "$deadline" ] || left=$deadline
# What this freeze froze, and found frozen by another: the thaw vouches for
# them when the VM's record of the freeze was lost.
frozen=$(sed -n 's/^quiesce-frozen \([A-Za-z][A-Za-z0-9_-]*\)$/\1/p' "$WORK/freeze.out" 2> /dev/null | tr '\n' ' ')
foreign=$(sed -n 's/^quiesce-foreign \([A-Za-z][A-Za-z0-9_-]*\)$/\1/p' "$WORK/freeze.out" 2> /dev/null | tr '\n' ' ')
word='' wrc=124
if [ "$left" -gt 0 ]; then
	if command -v timeout > /dev/null 2>&1; then
		# shellcheck disable=SC2016 # the inner shell expands $w
		word=$(timeout "$left" sh -c 'IFS= read -r w && printf %s "$w"' 2> /dev/null)
		wrc=$?
	else
		# No timeout(1): only the end of input fires the switch.
		# shellcheck disable=SC2016 # the inner shell expands $w
		word=$(sh -c 'IFS= read -r w && printf %s "$w"')
		wrc=$?
	fi
fi
case $wrc:$word in
0:thaw | 0:thawDeferred | 0:freezeFail) action=$word reason='' ;;
0:*) action=freezeFail reason="unexpected word from the controller: $word" ;;
124:*) action=freezeFail reason="no word from the controller ${deadline}s after the freeze started (network split?)" ;;
*) action=freezeFail reason='the controller went away (end of input)' ;;
esac
[ -z "$reason" ] || logger -p user.warning -t quiesce-session -- "run $owner: $reason: thawing (freezeFail)" 2> /dev/null || :
checked_copy "$post" "$post_shas" || {
	rc=$?
	printf '%s; not running it\n' "$WHY" >&2
	logger -p user.err -t quiesce-session -- "run $owner: $WHY; not running it: the instances stay frozen" 2> /dev/null || :
	say "quiesce-thaw $rc $action"
	exit "$rc"
}
# The thaw's answer goes straight to the controller: a full /tmp must not lose it.
# Its errors are kept in a file when there is room (a vanished controller
# cannot fail their writes), else they go straight out: the thaw always runs.
if { : > "$WORK/thaw.err"; } 2> /dev/null; then
	QUIESCE_OWNER=$owner QUIESCE_REASON=$reason QUIESCE_FROZEN=$frozen QUIESCE_FOREIGN=$foreign /bin/sh "$COPY" "$action" 2> "$WORK/thaw.err"
	rc=$?
	cat "$WORK/thaw.err" >&2 2> /dev/null || :
else
	QUIESCE_OWNER=$owner QUIESCE_REASON=$reason QUIESCE_FROZEN=$frozen QUIESCE_FOREIGN=$foreign /bin/sh "$COPY" "$action"
	rc=$?
fi
say "quiesce-thaw $rc $action"
exit "$rc"
