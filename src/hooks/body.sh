# ---- everything below is the same on every host ----
# Actions (VMware Tools passes the first three, each maybe followed by the
# backup request's script argument, which is logged and otherwise ignored):
#   freeze            freeze every instance in scope; on any failure thaw what
#                     this run froze (VMware runs no thaw after a failed freeze).
#                     The freeze timeout is QUIESCE_FREEZE_SECONDS (set by
#                     quiesce for its runs, never by VMware), else the
#                     deployed QUIESCE_FREEZE_TIMEOUT. A hung instance (qlist
#                     state `hung`) is never frozen; `warn` is logged and frozen.
#   thaw              thaw what the last freeze froze, then record the backup
#                     (ExternalSetHistory) where the snapshot is valid
#   thawDeferred      (quiesce only) thaw as `thaw` does, but record no backup
#                     yet: the snapshot's point in time is fixed, its data not
#                     yet durable (an EBS snapshot stays `pending` for minutes)
#   history           (quiesce only) record the backup of each instance whose
#                     last thaw by this owner was a valid thawDeferred, once
#   freezeFail        thaw what the last freeze froze; the snapshot failed, so
#                     no backup is recorded
#   status            print each instance in scope and whether it is suspended
# Exit status: 0 done; 1 something failed (see snapshot.log); 2 bad usage;
# 3 another freeze is running or was never thawed; 4 thawed, but the snapshot
# is INVALID (the write daemon resumed, the freeze outlived its timeout, or
# someone else ended the freeze before the thaw); 5 (thaw, freezeFail) an
# instance in scope is frozen and nothing records whose freeze it is (its
# record was lost): LEFT FROZEN, reported as `quiesce-outcome INST left-frozen`.
#
# Every write of the state is checked: a freeze whose record cannot be written
# is not made. The freeze prints `quiesce-frozen INST` for each instance it
# froze, so its caller (quiesce's freeze session) can vouch for them at the
# thaw (QUIESCE_FROZEN) when the record was lost; it prints
# `quiesce-foreign INST` for one it found frozen by someone else, and
# `quiesce-restore INST FILE OFFSET` for where a journal restore of this
# backup starts (the journal file ExternalFreeze switched to and the offset
# of its marker; `-` when the LogFile did not say). Times kept in
# the record are monotonic (seconds since boot, `m` before them): a clock
# stepped by NTP or VMware time sync moves no deadline.
#
# Freezes are owned. QUIESCE_OWNER (set by quiesce to its run id; unset when
# VMware Tools calls the hook, which then owns the freeze as `vmware`) is
# recorded with every instance frozen, and `thaw` / `freezeFail` thaw only
# their owner's instances (QUIESCE_OWNER=any: every recorded one, for a person
# finishing a freeze by hand). Every instance handled is reported on stdout as
# `quiesce-outcome INSTANCE KIND` and kept in $STATE_DIR/outcomes, so a later
# call of the same owner can tell what an earlier one whose answer was lost did.
set -f # instance names are split on white space, never globbed
PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin
# Whatever the VM's locale: what the hook reads and writes stays parseable.
LC_ALL=C
export PATH LC_ALL
umask 077
# Seconds since boot: steps of the wall clock do not move it.
mono() {
	if read -r up _ < /proc/uptime 2>/dev/null; then printf '%s\n' "${up%.*}"; else date +%s; fi
}
# The caller (a controller over SSH) may vanish at any time: a broken pipe or
# a hang-up must never stop a freeze's rollback or a thaw half-way.
trap '' PIPE HUP

SNAPLOG="$QUIESCE_LOG_DIR/snapshot.log"
# Who the hook writes the log directory's files as (log_writer): a directory
# the instance's owner can write is written as that owner, never as root.
log_writer "$QUIESCE_LOG_DIR"
[ "$LOG_AS" != none ] || logger -p user.warning -t quiesce-hook -- "nothing is written in $QUIESCE_LOG_DIR: $LOG_WHY" 2>/dev/null || :
STATE_DIR=/run/quiesce
STATE_FILE="$STATE_DIR/frozen"
OUTCOMES="$STATE_DIR/outcomes"
LOCK_DIR="$STATE_DIR/lock"
# The freeze framework that calls the hook when quiesce does not owns that
# freeze: `vmware` (VMware Tools, or a person calling the hook by hand) or
# `qemu-ga` (qemu-guest-agent's fsfreeze-hook, which passes freeze or thaw).
case $QUIESCE_FRAMEWORK in
qemu-ga) FRAMEWORK_OWNER=qemu-ga FRAMEWORK_NAME=qemu-guest-agent THAW_HOOK="$QUIESCE_HOOK_DIR/quiesce" ;;
*) FRAMEWORK_OWNER=vmware FRAMEWORK_NAME='VMware Tools' THAW_HOOK="$QUIESCE_HOOK_DIR/post-thaw-script" ;;
esac
OWNER=${QUIESCE_OWNER:-$FRAMEWORK_OWNER}
HOOK_PID=$$
# Made when this process is stopped by a signal: its worker rolls back.
STOP_FILE="$STATE_DIR/stop.$HOOK_PID"
# Written by the worker of a freeze once every instance is frozen.
DONE_FILE="$STATE_DIR/done.$HOOK_PID"
QUIESCE_FROZEN=${QUIESCE_FROZEN:-} QUIESCE_FOREIGN=${QUIESCE_FOREIGN:-} ADOPTED='' LOST=''
case "$QUIESCE_FROZEN $QUIESCE_FOREIGN" in *[!A-Za-z0-9_\ -]*) printf 'bad QUIESCE_FROZEN or QUIESCE_FOREIGN\n' >&2; exit 2 ;; esac
case $OWNER in '' | *[!A-Za-z0-9_.-]*) printf 'bad QUIESCE_OWNER: %s\n' "$OWNER" >&2; exit 2 ;; esac

# `date`'s familiar form in every locale, with the UTC offset beside the zone
# (Wed Nov 25 11:26:51 EST -0500 2026): the report converts the instances'
# zone-less LogFile times with the offset of the line before ExternalFreeze.
log() {
	case $LOG_AS in
	none) logger -p user.info -t quiesce-hook -- "$*" 2>/dev/null || : ;;
	*) keep "$SNAPLOG" "$(LC_ALL=C date '+%a %b %e %H:%M:%S %Z %z %Y'): $*" ;;
	esac
}
err() {
	[ "$LOG_AS" = none ] || log "$*"
	printf '%s\n' "$*" >&2 2>/dev/null || :
	logger -p user.err -t quiesce-hook -- "$*" 2>/dev/null || :
}
# Appends TEXT and a newline to FILE in the log directory, as log_writer
# decided: as root with the shell's own redirection in a directory root's
# alone, else as its owner and never through a link, a FIFO or a device
# (dd: O_NOFOLLOW, O_NONBLOCK); nothing for none.
keep() { # FILE TEXT
	case $LOG_AS in
	root) printf '%s\n' "$2" >> "$1" 2>/dev/null || : ;;
	none) ;;
	*) printf '%s\n' "$2" | log_as dd of="$1" oflag=append,nofollow,nonblock conv=notrunc status=none 2>/dev/null || : ;;
	esac
}
# What happened to INSTANCE, for the caller and for a later call of the same owner.
outcome() { # INSTANCE KIND
	printf 'quiesce-outcome %s %s\n' "$1" "$2" 2>/dev/null || :
	if ! printf '%s %s %s %s\n' "$(date +%s)" "$OWNER" "$1" "$2" >> "$OUTCOMES" 2>/dev/null; then
		log "cannot keep the outcome of $1 in $OUTCOMES (is /run full?): a later call cannot tell it again"
		return 0
	fi
	if [ "$(wc -l < "$OUTCOMES")" -gt 400 ]; then
		tail -n 200 "$OUTCOMES" > "$OUTCOMES.tmp" 2>/dev/null && mv -f "$OUTCOMES.tmp" "$OUTCOMES"
	fi
}
# The owners holding recorded freezes, for messages.
holders() { cut -d: -f3 "$STATE_FILE" 2>/dev/null | sed 's/^$/vmware/' | sort -u | tr '\n' ' ' | sed 's/ $//'; }
inst_log() { printf '%s/%s-pre_post.log' "$QUIESCE_LOG_DIR" "$1"; }
# The LogFile argument of the instance's methods: the instance opens it
# itself, so in a container it is the path there (container_log_dir, the
# target of log_dir's volume).
inst_log_arg() {
	if [ -n "$QUIESCE_CONTAINER" ]; then
		printf '%s/%s-pre_post.log' "$QUIESCE_CONTAINER_LOG_DIR" "$1"
	else
		inst_log "$1"
	fi
}
# The instance writes its LogFile itself, as its owner (iris_user): in a
# directory where root alone may create files the hook makes it theirs
# first (nothing can be planted in root's own directory), or the instance's
# freeze lines, with the journal file and marker, would be lost. In a
# container the file is made from inside it, by the container's root, and
# given to the user the instance runs as there: its owner is then right
# whatever the container's uid mapping.
own_log_file() { # INSTANCE
	olf=$(inst_log "$1")
	if [ -n "$QUIESCE_CONTAINER" ]; then
		[ -e "$olf" ] || [ -L "$olf" ] || within "$CHECK_SECONDS" container_touch "$(inst_log_arg "$1")" 2>/dev/null || :
	elif [ -n "$QUIESCE_IRIS_USER" ] && [ "$LOG_AS" = root ]; then
		[ -L "$olf" ] || { : >> "$olf" && chown -- "$QUIESCE_IRIS_USER" "$olf"; } 2>/dev/null || :
	fi
}
container_touch() { # FILE (inside the container)
	# shellcheck disable=SC2016,SC2317 # the container's shell expands $1 and $2; called through within
	"$QUIESCE_ENGINE" exec "$QUIESCE_CONTAINER" sh -c ': >> "$1" && { [ -z "$2" ] || chown -- "$2" "$1"; }' sh "$1" "$QUIESCE_IRIS_USER"
}
# After a freeze in a container: the instance's own lines (journal file and
# marker) must have reached log_dir through the volume since the freeze
# began (LOG_SIZE bytes were there), or a restore could not be started from
# what quiesce collects.
check_log_file() { # INSTANCE
	[ -n "$QUIESCE_CONTAINER" ] && [ "$LOG_AS" != none ] || return 0
	tail -c +$((LOG_SIZE + 1)) -- "$(inst_log "$1")" 2>/dev/null | grep -q 'Start a journal restore for this backup with journal file' && return 0
	err "$1: the instance's LogFile lines did not reach $(inst_log "$1"): $(inst_log_arg "$1") in container $QUIESCE_CONTAINER is not log_dir's volume; set container_log_dir to where $QUIESCE_LOG_DIR is mounted in the container (the journal file and marker of this backup are in the instance's messages.log)"
}

plain_name() {
	case $1 in
	'' | [!A-Za-z]* | *[!A-Za-z0-9_-]*) return 1 ;;
	esac
	return 0
}

# An instance command (iris, ccontrol, csession) as the inventory says to
# run it: in the instance's container (`ENGINE exec`), as its owner.
tool() { # COMMAND ARGS...
	if [ -n "$QUIESCE_CONTAINER" ]; then
		if [ -n "$QUIESCE_IRIS_USER" ]; then
			"$QUIESCE_ENGINE" exec --user "$QUIESCE_IRIS_USER" "$QUIESCE_CONTAINER" "$@"
		else
			"$QUIESCE_ENGINE" exec "$QUIESCE_CONTAINER" "$@"
		fi
	elif [ -n "$QUIESCE_IRIS_USER" ]; then
		if command -v runuser > /dev/null 2>&1; then
			runuser -u "$QUIESCE_IRIS_USER" -- "$@"
		else
			sudo -n -u "$QUIESCE_IRIS_USER" -- "$@"
		fi
	else
		"$@"
	fi
}

# Runs OBJECTSCRIPT in INSTANCE's %SYS; returns its exit status (5 and 3
# carry meaning). What the session prints is kept in the instance's log, and
# a refused login is named with its fix.
session() { # INSTANCE OBJECTSCRIPT
	# Names of their own: callers keep their `rc` across this call.
	if [ "$QUIESCE_PLATFORM" = cache ]; then
		session_said=$(tool csession "$1" -U %SYS "$2" < /dev/null 2>&1)
	else
		session_said=$(tool iris session "$1" -U %SYS "$2" < /dev/null 2>&1)
	fi
	session_rc=$?
	if [ -n "$session_said" ]; then
		keep "$(inst_log "$1")" "$session_said"
		case $session_said in
		*"Access Denied"* | *"Username:"* | *"Access denied"*)
			err "$1: the session was refused (Access Denied): enable OS authentication for root, or set iris_user (the instance owner) in the inventory"
			return 98 ;;
		esac
	fi
	return "$session_rc"
}

# How long the hook waits for one session to answer. Every session is
# bounded: a paused instance (a freeze that outlived ExternalFreezeTimeOut)
# takes no new login until it is thawed, and VMware Tools' one timer for the
# whole quiesce operation must never be what ends a hook.
THAW_SESSION_SECONDS=10
CHECK_SECONDS=10
# ExternalFreeze waits up to its own TimeOut (10 s by default) for the write
# daemon: this leaves it room, and stays far under Tools' 900 s.
FREEZE_SESSION_SECONDS=40
session_seq=0
WITHIN_BASE='' WITHIN_OUT=''

# FUNCTION ARGS run in the background, waited for at most SECONDS; returns its
# status, or 124 when it has not ended by then. One left behind goes on and
# ends by itself (an IRIS process is never killed: that can hang the
# instance); WITHIN_BASE.run exists until it does. Its stdout is WITHIN_OUT,
# its stderr goes on to ours; neither holds the caller's channel open.
within() { # SECONDS FUNCTION ARGS...
	w_secs=$1
	shift
	session_seq=$((session_seq + 1))
	WITHIN_BASE="$STATE_DIR/session.$HOOK_PID.$session_seq" WITHIN_OUT=''
	rm -f "$WITHIN_BASE" "$WITHIN_BASE.out" "$WITHIN_BASE.err"
	# A byte, not an empty file: a full tmpfs still has inodes for those.
	if ! { mkdir -p "$STATE_DIR" && echo "$HOOK_PID" > "$WITHIN_BASE.run"; } 2>/dev/null; then
		rm -f "$WITHIN_BASE.run" 2>/dev/null
		# No room to keep its answer: waited for in the foreground.
		WITHIN_OUT=$("$@")
		return
	fi
	( "$@"; echo "$?" > "$WITHIN_BASE.tmp" && mv -f "$WITHIN_BASE.tmp" "$WITHIN_BASE"; rm -f "$WITHIN_BASE.run" ) > "$WITHIN_BASE.out" 2> "$WITHIN_BASE.err" < /dev/null &
	w_waited=0
	while [ ! -s "$WITHIN_BASE" ] && [ "$w_waited" -lt $((w_secs * 5)) ]; do
		sleep 0.2
		w_waited=$((w_waited + 1))
	done
	if [ -s "$WITHIN_BASE" ]; then
		w_status=$(cat "$WITHIN_BASE" 2>/dev/null)
		WITHIN_OUT=$(cat "$WITHIN_BASE.out" 2>/dev/null)
		cat "$WITHIN_BASE.err" >&2 2>/dev/null || :
		rm -f "$WITHIN_BASE" "$WITHIN_BASE.out" "$WITHIN_BASE.err"
		return "${w_status:-1}"
	fi
	return 124
}

# Waits until the call left behind as BASE ends, at most SECONDS; 0 when it did.
wait_for_call() { # BASE SECONDS
	wf_waited=0
	while [ -e "$1.run" ] && [ "$wf_waited" -lt $(($2 * 5)) ]; do
		sleep 0.2
		wf_waited=$((wf_waited + 1))
	done
	[ ! -e "$1.run" ]
}

session_within() { # SECONDS INSTANCE OBJECTSCRIPT
	within "$1" session "$2" "$3"
}

# Ends INSTANCE's backup freeze without a session (`iris stat INST -W`, Caché
# `ccontrol stat INST -W`): documented for an instance that takes no new login.
stat_w() { # INSTANCE
	if [ "$QUIESCE_PLATFORM" = cache ]; then set -- ccontrol stat "$1" -W; else set -- iris stat "$1" -W; fi
	stat_said=$(tool "$@" < /dev/null 2>&1)
	stat_rc=$?
	keep "$(inst_log "$3")" "$stat_said"
	return "$stat_rc"
}

qlist() {
	if [ "$QUIESCE_PLATFORM" = cache ]; then tool ccontrol qlist; else tool iris qlist; fi
}

# Up instances, one per line, from the stable ^-separated qlist: field 4 is
# `running, since ...`, `down, last used ...`, or another state of an up
# instance (`sign-on inhibited, ...`, `sign-on inhibited:primary transition`,
# `running on node ? (...)`): every one but down is up and is frozen (or the
# freeze fails), never skipped. Field 9 is the instance's state (ok, warn,
# hung; absent on old versions). A hung one is printed `?NAME`.
running_instances() {
	qlist | while IFS='^' read -r name _dir _version status _cpf _p1 _p2 _p3 state _rest; do
		case $status in
		down* | '') ;;
		*)
			if ! plain_name "$name"; then err "ignoring instance with an unexpected name: $name"; continue; fi
			case $status in
			running,*) ;;
			*) log "$name reports status '$status' (qlist): it is up, so it is frozen like a running one" ;;
			esac
			case $state in
			hung) printf '?%s\n' "$name" ;;
			warn) log "$name reports state warn (qlist): freezing it anyway; see its messages.log"; printf '%s\n' "$name" ;;
			*) printf '%s\n' "$name" ;;
			esac ;;
		esac
	done
}

# Instances in scope: the configured list (each must be running), else every running one.
scope() {
	running=$(running_instances)
	if [ -z "$QUIESCE_INSTANCES" ]; then
		printf '%s\n' "$running"
		return 0
	fi
	for want in $QUIESCE_INSTANCES; do
		if printf '%s\n' "$running" | grep -qx -- "$want"; then
			printf '%s\n' "$want"
		elif printf '%s\n' "$running" | grep -qx -- "?$want"; then
			printf '?%s\n' "$want"
		else
			err "configured instance $want is not running"
			printf '!%s\n' "$want"
		fi
	done
}

# The lock is a directory (mkdir is atomic everywhere) holding its holder's
# pid. A holder that died leaves it behind, and it is taken over under a
# second directory, LOCK_DIR.takeover: of two hooks that find the same dead
# holder only one removes the lock (the other would remove the winner's new
# one, and both would go on). A lock with no pid (its maker died between
# mkdir and writing it) is stale once LOCK_EMPTY_SECONDS old, and so is a
# takeover left by a hook killed in the middle of one.
LOCK_EMPTY_SECONDS=10
age_of() { # PATH: seconds since it was made (0 when it is gone)
	ao_m=$(stat -c %Y -- "$1" 2>/dev/null) || { echo 0; return 0; }
	echo $(($(date +%s) - ao_m))
}
lock_is_stale() { # HOLDER (the pid in the lock, maybe empty)
	if [ -n "$1" ]; then
		! kill -0 "$1" 2>/dev/null
	else
		[ -d "$LOCK_DIR" ] && [ "$(age_of "$LOCK_DIR")" -ge "$LOCK_EMPTY_SECONDS" ]
	fi
}
# Removes the lock if it still is HOLDER's stale one; 1 when another hook is
# taking it over now.
take_over() { # HOLDER
	if ! mkdir "$LOCK_DIR.takeover" 2>/dev/null; then
		[ "$(age_of "$LOCK_DIR.takeover")" -lt "$LOCK_EMPTY_SECONDS" ] || rmdir "$LOCK_DIR.takeover" 2>/dev/null
		return 1
	fi
	to_now=$(cat "$LOCK_DIR/pid" 2>/dev/null || :)
	if [ "$to_now" = "$1" ] && lock_is_stale "$to_now"; then
		log "removing the stale lock of process ${1:-unknown (the lock has no pid)}"
		rm -rf "$LOCK_DIR"
	fi
	rmdir "$LOCK_DIR.takeover" 2>/dev/null
	return 0
}

acquire_lock() { # WAIT_SECONDS
	mkdir -p "$STATE_DIR"
	waited=0 turns=0
	while ! mkdir "$LOCK_DIR" 2>/dev/null; do
		holder=$(cat "$LOCK_DIR/pid" 2>/dev/null || :)
		# Released since: try again (a few times: mkdir can fail for want
		# of room too).
		if [ ! -e "$LOCK_DIR" ]; then
			turns=$((turns + 1))
			if [ "$turns" -ge 50 ]; then
				err "cannot make the lock $LOCK_DIR (is /run full or read-only?): nothing was done"
				exit 1
			fi
			continue
		fi
		if lock_is_stale "$holder" && [ "$turns" -lt 50 ]; then
			take_over "$holder" || sleep 0.2
			turns=$((turns + 1))
			continue
		fi
		if [ "$waited" -ge "$1" ]; then
			err "another quiesce hook (process ${holder:-unknown}) is running; not starting a second one"
			exit 3
		fi
		sleep 1
		waited=$((waited + 1))
	done
	# The worker's own pid ($$ is the waiting hook's): a hook stopped by a
	# signal leaves its worker holding the lock until the work is done.
	echo "${WORKER_PID:-$$}" > "$LOCK_DIR/pid"
	trap 'rm -rf "$LOCK_DIR"; sweep' EXIT
}

# The files of calls that ended, this hook's and those of hooks long gone
# (never a running call's, nor this hook's stop and done marks while the
# hook lives: it reads them after its worker ended).
# shellcheck disable=SC2317 # run by the EXIT trap
sweep() {
	set +f # the one glob of the hooks: names of its own making
	for f in "$STATE_DIR"/session.* "$STATE_DIR"/stop.* "$STATE_DIR"/done.*; do
		[ -e "$f" ] || continue
		base=${f%.run}; base=${base%.out}; base=${base%.err}; base=${base%.tmp}
		[ -e "$base.run" ] && continue
		pid=${f#"$STATE_DIR"/*.}; pid=${pid%%.*}
		case $pid in '' | *[!0-9]*) continue ;; esac
		if [ "$pid" = "$HOOK_PID" ] && kill -0 "$pid" 2>/dev/null; then
			case $f in "$STATE_DIR"/session.*) ;; *) continue ;; esac
		elif [ "$pid" != "$HOOK_PID" ] && kill -0 "$pid" 2>/dev/null; then
			continue
		fi
		rm -f "$f"
	done
	set -f
}

# Whether the hook that started this work was stopped: by a signal (VMware
# Tools' timer sends SIGTERM, then SIGKILL 5 s later) or killed outright. Its
# caller then takes the freeze as failed and runs no thaw for it.
stopped() {
	[ -e "$STOP_FILE" ] && return 0
	kill -0 "$HOOK_PID" 2>/dev/null && return 1
	return 0
}

# Run first in each process that does the work (a subshell): it is then the
# lock's holder (WORKER_PID, its own pid: $$ is the hook's) and no TERM or
# INT stops it half-way.
become_worker() {
	trap '' TERM INT
	read -r WORKER_PID _ < /proc/self/stat 2>/dev/null || WORKER_PID=''
}

# The hook's own process only waits: the work runs in a child that ignores
# TERM and INT, so a signal to this pid (VMware Tools signals the script's pid
# only) can never stop a rollback or a thaw half-way, and this process answers
# a signal at once. A freeze whose hook was stopped is rolled back by the
# child, also when its session answers after the hook is gone.
run_worker() {
	( become_worker
	case $action in
	freeze) do_freeze "$timeout" ;;
	*) do_thaw "$action" ;;
	esac ) &
	worker=$!
	trap on_stop TERM INT
	wait "$worker"
	worker_rc=$?
	# The answer is the worker's now: a signal from here on changes nothing
	# (a TERM before this line found the done mark and undid the freeze).
	trap '' TERM INT
	rm -f "$STOP_FILE" "$DONE_FILE"
	exit "$worker_rc"
}

# shellcheck disable=SC2317 # run by the TERM and INT trap
on_stop() {
	{ : > "$STOP_FILE"; } 2>/dev/null || :
	log "$action: stopped by a signal (VMware Tools' timer, or its service stopping); process $worker goes on with the work"
	if [ "$action" = freeze ] && [ -s "$DONE_FILE" ]; then
		# The freeze was complete, but its caller takes a stopped hook as a
		# failed one and thaws nothing: undo it.
		log "the freeze was complete when the hook was stopped: thawing it (freezeFail)"
		( become_worker
		do_thaw freezeFail ) > /dev/null 2>&1 &
	fi
	exit 143
}

# Where a journal restore of this backup starts: the journal file the freeze
# switched to (from identity, already reduced to path characters) and the
# marker's offset, from the LogFile lines the instance just wrote.
# shellcheck disable=SC2317 # run from the freeze loop
restore_point() { # INSTANCE JOURNAL_FILE
	rp_offset=$(sed -n '/^Journal marker set at$/{n;p;}' -- "$(inst_log "$1")" 2>/dev/null | tail -n 1 | sed -n 's/^offset \([0-9][0-9]*\) of .*/\1/p')
	printf 'quiesce-restore %s %s %s\n' "$1" "${2:--}" "${rp_offset:--}" 2>/dev/null || :
}

# Whose freeze holds INSTANCE: its start (qlist field 4) and its current
# journal file. ExternalFreeze switches the journal file and a start begins a
# new one, so a freeze ended and made again by someone else, or an instance
# restarted and frozen again, has another identity than the one recorded.
# shellcheck disable=SC2317 # run through within
identity() { # INSTANCE
	# The start only (`… since DATE`): the status before it changes while an
	# instance runs (running, sign-on inhibited), its start does not.
	id_since=$(qlist 2>/dev/null | awk -F'^' -v n="$1" '$1 == n { s = $4; if (sub(/.*since /, "", s)) print s; exit }')
	if [ "$QUIESCE_PLATFORM" = cache ]; then set -- csession "$1"; else set -- iris session "$1"; fi
	id_journal=$(printf 'W "quiesce-journal=",##class(%%SYS.Journal.System).GetCurrentFileName(),!\nhalt\n' |
		tool "$@" -U %SYS 2>/dev/null | tr -d '\r' | sed -n 's/.*quiesce-journal=//p' | tail -n 1)
	printf '%s@%s' "$id_since" "$id_journal" | tr -c 'A-Za-z0-9/._@-' '_'
}

# Why the freeze now holding INSTANCE is not the one recorded as IDENTITY
# (empty when it is, or when nothing tells them apart).
replaced() { # INSTANCE IDENTITY
	within "$CHECK_SECONDS" identity "$1"
	now_id=$WITHIN_OUT
	if [ -n "${now_id%%@*}" ] && [ -n "${2%%@*}" ] && [ "${now_id%%@*}" != "${2%%@*}" ]; then
		echo "the instance restarted since this freeze"
	elif [ -n "${now_id#*@}" ] && [ -n "${2#*@}" ] && [ "${now_id#*@}" != "${2#*@}" ]; then
		echo "the journal switched from ${2#*@} to ${now_id#*@}: someone ended this freeze and froze it again"
	fi
}

# Whether qlist says INSTANCE is down (status `down, last used …`).
is_down() { # INSTANCE
	qlist 2>/dev/null | awk -F'^' -v n="$1" '$1 == n { found = 1; down = ($4 ~ /^down/) } END { exit !(found && down) }'
}

is_suspended() { # INSTANCE [SECONDS] -> 0 suspended, 1 not, 2 unknown (3: no answer in SECONDS)
	if [ -n "${2:-}" ]; then
		session_within "$2" "$1" '##Class(Backup.General).IsWDSuspendedExt()'
	else
		session "$1" '##Class(Backup.General).IsWDSuspendedExt()'
	fi
	case $? in 5) return 0 ;; 3) return 1 ;; 124) return 3 ;; *) return 2 ;; esac
}

# Thaw this owner's instances of the state file in reverse order. MODE is
# thaw or freezeFail. Instances that fail to thaw stay in the state file for a
# retry; other owners' entries are never touched.
thaw_recorded() { # MODE
	mode=$1 failed=0 invalid=0 keep='' others='' history=now
	# thawDeferred is a thaw whose backup is recorded by a later `history`.
	if [ "$mode" = thawDeferred ]; then mode=thaw history=later; fi
	[ -f "$STATE_FILE" ] || [ -n "$ADOPTED" ] || return 0
	newest_first="$(awk '{ l[NR] = $0 } END { for (i = NR; i > 0; i--) print l[i] }' "$STATE_FILE" 2>/dev/null)
$ADOPTED"

	for entry in $newest_first; do
		old_ifs=$IFS; IFS=:
		# shellcheck disable=SC2086 # split on ':' on purpose (globbing is off)
		set -- $entry
		IFS=$old_ifs
		how=${1:-} inst=${2:-} owner=${3:-} since=${4:-} limit=${5:-} ident=${6:-}
		owner=${owner:-vmware}
		if [ "$OWNER" != any ] && [ "$owner" != "$OWNER" ]; then
			others="$entry
$others"
			continue
		fi
		plain_name "$inst" || continue
		is_suspended "$inst" "$THAW_SESSION_SECONDS"; suspended=$?
		if [ "$suspended" = 3 ]; then
			log "$inst: no session answered within ${THAW_SESSION_SECONDS}s (a paused instance takes no new login)"
			suspended=2
		fi
		if [ "$suspended" = 2 ] && is_down "$inst"; then
			# A stopped instance holds no freeze: it ended when the instance
			# went down, at a time nothing here tells.
			if [ "$how" = pending ]; then
				log "$inst is down: the interrupted freeze left nothing frozen"
				outcome "$inst" not-frozen
				continue
			fi
			err "$inst is down (qlist): its freeze ended when it stopped, so there is nothing to thaw; start it and look at its messages.log"
			if [ "$mode" = thaw ]; then invalid=1; fi
			outcome "$inst" down
			continue
		fi
		if [ "$how" = pending ] && [ "$suspended" = 1 ]; then
			log "$inst was not frozen by the interrupted freeze; nothing to thaw"
			outcome "$inst" not-frozen
			continue
		fi
		if [ "$suspended" = 0 ] && [ -n "$ident" ]; then
			why=$(replaced "$inst" "$ident")
			if [ -n "$why" ]; then
				err "$inst: the freeze holding it is not this one ($why): not thawing another's freeze; the snapshot of $inst is INVALID"
				if [ "$mode" = thaw ]; then invalid=1; fi
				outcome "$inst" replaced
				continue
			fi
		fi
		kind=thawed
		if [ "$mode" = thaw ]; then
			kind=valid
			if [ "$suspended" != 0 ]; then
				err "$inst: the write daemon resumed before the thaw: the snapshot of $inst is INVALID"
				invalid=1 kind=invalid-wd-resumed
			fi
		fi
		log "Attempting to thaw $inst"
		session_within "$THAW_SESSION_SECONDS" "$inst" "##Class(Backup.General).ExternalThaw(\"$(inst_log_arg "$inst")\")"
		rc=$?
		if [ "$rc" = 124 ]; then
			err "$inst: no session started within ${THAW_SESSION_SECONDS}s to thaw it (a paused instance takes no new login): ending its freeze with irisstat -W"
			if stat_w "$inst"; then
				log "$inst: freeze ended by irisstat -W"
				rc=5
				if [ "$mode" = thaw ]; then
					err "$inst: thawed by irisstat -W, not ExternalThaw: the snapshot of $inst is INVALID"
					invalid=1
				fi
				kind=thawed-stat-w
			else
				err "$inst: irisstat -W failed too (exit $stat_rc): $stat_said"
			fi
		fi
		if [ "$rc" != 5 ]; then
			# A thaw that failed because the freeze already ended is no failure.
			is_suspended "$inst" "$CHECK_SECONDS"
			if [ $? = 1 ]; then
				err "$inst: ExternalThaw returned $rc, but $inst is no longer frozen: someone else ended the freeze"
				if [ "$mode" = thaw ]; then invalid=1; fi
				outcome "$inst" ended-elsewhere
				continue
			fi
		fi
		case $rc in
		5)
			log "$inst IS THAWED"
			# Timed after the thaw (outside the freeze window): later, so never too kind.
			if [ "$kind" = valid ] && [ -n "${since:-}" ] && [ -n "${limit:-}" ] && [ "$(elapsed "$since")" -ge "$limit" ]; then
				err "$inst: the freeze outlived its timeout (${limit}s): the instance paused, and the snapshot of $inst is INVALID"
				invalid=1 kind=invalid-paused
			fi
			if [ "$kind" = valid ] && [ "$history" = later ]; then
				log "$inst: the backup is recorded (ExternalSetHistory) once the snapshot is durable"
				kind=valid-deferred
			elif [ "$kind" = valid ]; then
				within "$THAW_SESSION_SECONDS" session "$inst" "##Class(Backup.General).ExternalSetHistory(\"$(inst_log_arg "$inst")\")"
				# Not documented to exit 5 as ExternalFreeze does: a session that
				# ends normally (0) or with 5 recorded it; 3 or anything else did not.
				case $? in
				0 | 5) ;;
				124) err "$inst: thawed, but ExternalSetHistory did not answer within ${THAW_SESSION_SECONDS}s: the backup may be missing from the history" ;;
				*) err "$inst: thawed, but ExternalSetHistory failed: the backup is not in the history" ;;
				esac
			fi
			outcome "$inst" "$kind"
			log "Completed thaw of $inst" ;;
		3) err "$inst THAW FAILED (ExternalThaw returned 3)"; failed=1; outcome "$inst" thaw-failed; keep="$entry
$keep" ;;
		*) err "$inst THAW FAILED (ExternalThaw exit status $rc unknown)"; failed=1; outcome "$inst" thaw-failed; keep="$entry
$keep" ;;
		esac
	done
	# Other owners' entries, then this owner's failures, each oldest first.
	keep=$(printf '%s%s' "$others" "$keep" | awk 'NF')
	if [ -n "$keep" ]; then
		if ! { printf '%s\n' "$keep" > "$STATE_FILE.tmp" && mv -f "$STATE_FILE.tmp" "$STATE_FILE"; } 2>/dev/null; then
			err "cannot rewrite $STATE_FILE (is /run full?): what is still frozen may not be recorded; see the THAW FAILED lines"
			failed=1
		fi
	else
		rm -f "$STATE_FILE"
	fi
	[ "$failed" = 0 ] || return 1
	[ "$invalid" = 0 ] || return 4
	return 0
}

# This owner's recorded entries, if any.
owned() {
	[ -s "$STATE_FILE" ] || return 1
	[ "$OWNER" = any ] && return 0
	while IFS=: read -r _ _ holder _; do
		[ "${holder:-vmware}" = "$OWNER" ] && return 0
	done < "$STATE_FILE"
	return 1
}

# Seconds since SINCE (the record's `mSECONDS` since boot; an old hook's epoch).
elapsed() { # SINCE
	case $1 in
	m*) echo $(($(mono) - ${1#m})) ;;
	*) echo $(($(date +%s) - $1)) ;;
	esac
}

record() { # SED-EXPRESSION applied to the state file; fails when it cannot be written
	{ sed "$1" "$STATE_FILE" > "$STATE_FILE.tmp" && mv -f "$STATE_FILE.tmp" "$STATE_FILE"; } 2>/dev/null || return 1
	[ -s "$STATE_FILE" ] || rm -f "$STATE_FILE"
}

# Instances in scope that are frozen and that no record names (the state file
# was lost: /run cleaned, or removed by hand). Those the caller vouches for
# (QUIESCE_FROZEN: its freeze said `quiesce-frozen`) are adopted as this
# owner's and thawed; the others (LOST) are this hook's to report, never to
# call thawed. Instances the caller's freeze found frozen by someone else
# (QUIESCE_FOREIGN) are left alone.
unrecorded() {
	ADOPTED='' LOST=''
	# qlist read here, not through running_instances: its notes are the freeze's.
	for inst in $(qlist 2>/dev/null | awk -F'^' '$4 != "" && $4 !~ /^down/ && $9 != "hung" { print $1 }'); do
		plain_name "$inst" || continue
		case " ${QUIESCE_INSTANCES:-$inst} " in *" $inst "*) ;; *) continue ;; esac
		grep -q "^[a-z]*:$inst:" "$STATE_FILE" 2>/dev/null && continue
		case " $QUIESCE_FOREIGN " in *" $inst "*) continue ;; esac
		# No answer in time: taken as frozen (a paused instance takes no
		# login), so it is thawed or reported, never passed over.
		is_suspended "$inst" "$CHECK_SECONDS"
		case $? in 0 | 3) ;; *) continue ;; esac
		case " $QUIESCE_FROZEN " in
		*" $inst "*)
			log "$inst is frozen and its record is gone; this run's freeze froze it, so it is thawed"
			ADOPTED="frozen:$inst:$OWNER::
$ADOPTED" ;;
		*) LOST="$LOST $inst" ;;
		esac
	done
}

report_lost() {
	for inst in $LOST; do
		err "$inst IS STILL FROZEN and nothing records whose freeze it is (was $STATE_FILE removed, or /run full?): not thawing what may be another's freeze. Find who froze it; to end it: iris session $inst -U %SYS '##Class(Backup.General).ExternalThaw()' (csession for Cache)"
		outcome "$inst" left-frozen
	done
}

do_freeze() { # TIMEOUT
	timeout=$1
	acquire_lock 0
	if [ -s "$STATE_FILE" ]; then
		who=$(holders)
		printf 'quiesce-holder %s\n' "$who" 2>/dev/null || :
		err "a previous freeze by $who ($(cut -d: -f1,2 "$STATE_FILE" | tr '\n' ' ' | sed 's/ $//')) was never thawed; this freeze did nothing. Finish it first: \`quiesce recover RUN\` for a quiesce run, or QUIESCE_OWNER=$who $THAW_HOOK freezeFail on the host"
		exit 3
	fi
	log "Pre freeze script started"
	# Created, never truncated: entries are removed only by the thaw.
	if ! { : >> "$STATE_FILE"; } 2>/dev/null; then
		err "cannot write $STATE_FILE (is /run full or read-only?): nothing was frozen, because a freeze that cannot be recorded might never be thawed"
		exit 1
	fi
	failed=0 inflight=''
	in_scope=$(scope)
	# A freeze the framework asked for (a backup product's quiesced snapshot,
	# a hypervisor's fsfreeze, not a quiesce run, which orders the mirror
	# itself): each instance's mirror role is logged, and a failover primary
	# refused when the inventory says so (refuse_vmware_primary), before
	# anything is frozen.
	if [ "$OWNER" = "$FRAMEWORK_OWNER" ]; then
		roles=$(qlist 2>/dev/null | awk -F'^' '$1 != "" && $11 != "" { print $1 "^" $11 "^" $12 }')
		for inst in $in_scope; do
			role=$(printf '%s\n' "$roles" | awk -F'^' -v n="${inst#[?!]}" '$1 == n { print $2 " " $3; exit }')
			[ -n "$role" ] || continue
			log "${inst#[?!]}: mirror member $role, frozen for $FRAMEWORK_NAME: the VM's stun counts against the mirror's QoS timeout"
			case $role in
			Failover*Primary*)
				if [ "$QUIESCE_REFUSE_VMWARE_PRIMARY" = yes ]; then
					err "${inst#[?!]} is its mirror's failover primary: refusing a freeze $FRAMEWORK_NAME asked for (refuse_vmware_primary), so this quiesced snapshot is aborted; back the mirror up with quiesce backup, which freezes the primary last and briefly"
					exit 1
				fi ;;
			esac
		done
	fi
	for inst in $in_scope; do
		case $inst in
		'!'*) failed=1; break ;;
		'?'*) err "${inst#?} is hung (qlist state hung): not freezing it; a hung instance must be looked at first (see its messages.log)"; failed=1; break ;;
		esac
		if stopped; then err "the hook was stopped before $inst was frozen: thawing what was frozen"; failed=1; break; fi
		log "Attempting to freeze $inst"
		own_log_file "$inst"
		is_suspended "$inst" "$CHECK_SECONDS"
		case $? in
		0) err "$inst is already frozen by another backup; not freezing it again"; printf 'quiesce-foreign %s\n' "$inst" 2>/dev/null || :; failed=1; break ;;
		2) err "$inst: cannot query its state (IsWDSuspendedExt); not freezing"; failed=1; break ;;
		3) err "$inst: no session answered within ${CHECK_SECONDS}s (IsWDSuspendedExt); not freezing"; failed=1; break ;;
		esac
		if ! printf 'pending:%s:%s:m%s:%s\n' "$inst" "$OWNER" "$(mono)" "$timeout" >> "$STATE_FILE" 2>/dev/null || ! grep -q "^pending:$inst:" "$STATE_FILE" 2>/dev/null; then
			err "$inst: cannot record its freeze in $STATE_FILE (is /run full?): not freezing it"
			failed=1
			break
		fi
		# Only in a container: what its instance adds is looked for after.
		LOG_SIZE=0
		if [ -n "$QUIESCE_CONTAINER" ] && [ -f "$(inst_log "$inst")" ]; then
			LOG_SIZE=$({ wc -c < "$(inst_log "$inst")"; } 2>/dev/null) || LOG_SIZE=0
			case $LOG_SIZE in '' | *[!0-9]*) LOG_SIZE=0 ;; esac
		fi
		within "$FREEZE_SESSION_SECONDS" session "$inst" "##Class(Backup.General).ExternalFreeze(\"$(inst_log_arg "$inst")\",,,,,,$timeout)"
		rc=$?
		if [ "$rc" = 124 ]; then
			# It may still freeze the instance: its record stays pending, and
			# the rollback waits for it to end before it asks the instance.
			err "$inst FREEZE FAILED: ExternalFreeze did not answer within ${FREEZE_SESSION_SECONDS}s"
			inflight=$WITHIN_BASE
			failed=1
			break
		fi
		# 5: frozen. 3: certainly not frozen. Anything else: unknown, so the
		# entry stays pending and a thaw checks IsWDSuspendedExt first.
		case $rc in
		5)
			printf 'quiesce-frozen %s\n' "$inst" 2>/dev/null || :
			within "$CHECK_SECONDS" identity "$inst"
			# A failed rewrite leaves the entry pending: a thaw asks the instance first.
			record "s|^pending:$inst:\(.*\)$|frozen:$inst:\1:$WITHIN_OUT|" || log "$inst: cannot mark its record frozen; it stays pending"
			log "$inst IS FROZEN"; log "Completed freeze of $inst"
			check_log_file "$inst"
			restore_point "$inst" "${WITHIN_OUT#*@}" ;;
		3) record "/^pending:$inst:/d" || :; err "$inst FREEZE FAILED (ExternalFreeze returned 3)"; failed=1; break ;;
		*) err "$inst FREEZE FAILED (ExternalFreeze exit status $rc unknown)"; failed=1; break ;;
		esac
	done
	if [ "$failed" = 0 ]; then
		# Said before it is checked: a hook stopped from now on has its
		# freeze undone by this worker (it sees the stop) or by the hook
		# (it sees this), whichever comes second.
		{ echo frozen > "$DONE_FILE"; } 2>/dev/null || :
		if stopped; then
			err "the hook was stopped as the freeze completed: thawing what was frozen, since its caller takes it as failed"
			failed=1
		fi
	fi
	if [ "$failed" = 1 ]; then
		if [ -n "$inflight" ]; then
			roll_back_after "$inflight" "$timeout"
		fi
		log "Pre freeze script failed: thawing what was frozen"
		thaw_recorded freezeFail
		err "Pre freeze script failed; nothing is left frozen unless a THAW FAILED line says so"
		# qemu-ga aborts the fsfreeze on this status only when it runs this
		# hook itself (-F/.../quiesce); its stock fsfreeze-hook ignores it.
		[ "$OWNER" != qemu-ga ] || err "qemu-guest-agent goes on with the snapshot unless it runs this hook directly (fsfreeze-hook=$QUIESCE_HOOK_DIR/quiesce): the stock fsfreeze-hook ignores this failure, and that snapshot holds no frozen database"
		exit 1
	fi
	log "Pre freeze script finished"
	exit 0
}

# A freeze session that did not answer may still freeze its instance. The
# hook answers now (failed); a process of its own, holding the lock, waits
# for that session to end (at most the freeze timeout and a minute) and then
# thaws whatever this freeze froze.
roll_back_after() { # CALL TIMEOUT
	(
		become_worker
		trap '' HUP
		[ -z "$WORKER_PID" ] || echo "$WORKER_PID" > "$LOCK_DIR/pid"
		trap 'rm -rf "$LOCK_DIR"; sweep' EXIT
		if wait_for_call "$1" $(($2 + 60)); then
			log "the freeze session left behind has ended: thawing what this freeze froze"
		else
			log "the freeze session left behind has not ended after $(($2 + 60))s: thawing what this freeze froze"
		fi
		thaw_recorded freezeFail
		case $? in
		1) err "the rollback after a freeze session that did not answer failed: see the THAW FAILED lines" ;;
		*) log "rollback after the unanswered freeze session done" ;;
		esac
	) > /dev/null 2>&1 &
	err "the rollback waits in process $! for the freeze session still under way to end, then thaws what it froze"
	# This worker's lock is now that process's.
	trap - EXIT
	exit 1
}

do_thaw() { # MODE
	acquire_lock 30
	log "Post thaw script started ($1${QUIESCE_REASON:+: $QUIESCE_REASON})"
	unrecorded
	if [ -z "$ADOPTED" ] && ! owned; then
		# Only what this owner froze is thawed: an instance suspended by
		# another run or another backup tool is left to it. What an earlier
		# call of this owner did is told again.
		[ -s "$STATE_FILE" ] || rm -f "$STATE_FILE"
		echo "nothing recorded: $OWNER has nothing frozen"
		[ -f "$OUTCOMES" ] && awk -v o="$OWNER" '$2 == o { print "quiesce-outcome " $3 " " $4 " earlier" }' "$OUTCOMES"
		if [ -n "$LOST" ]; then
			report_lost
			err "Post thaw script failed: an instance is left frozen"
			exit 5
		fi
		log "Post thaw script finished: $OWNER has nothing frozen"
		exit 0
	fi
	thaw_recorded "$1"
	rc=$?
	if [ -n "$LOST" ]; then
		report_lost
		case $rc in 0 | 4) rc=5 ;; esac
	fi
	if [ "$rc" = 0 ]; then log "Post thaw script finished"; else err "Post thaw script failed"; fi
	exit "$rc"
}

# The backups thawDeferred left unrecorded: each instance whose last outcome
# of this owner is valid-deferred gets ExternalSetHistory now, once, and says
# `quiesce-history INSTANCE recorded|failed`.
do_history() {
	case $OWNER in vmware | any) err "history is for quiesce's own runs (QUIESCE_OWNER=RUN)"; exit 2 ;; esac
	acquire_lock 30
	pending=$([ -f "$OUTCOMES" ] && awk -v o="$OWNER" '$2 == o { k[$3] = $4 } END { for (i in k) if (k[i] == "valid-deferred") print i }' "$OUTCOMES" | sort)
	rc=0
	for inst in $pending; do
		plain_name "$inst" || continue
		within "$THAW_SESSION_SECONDS" session "$inst" "##Class(Backup.General).ExternalSetHistory(\"$(inst_log_arg "$inst")\")"
		case $? in
		0 | 5) log "$inst: the backup of run $OWNER is recorded (ExternalSetHistory): its snapshot is durable"; outcome "$inst" valid; echo "quiesce-history $inst recorded" ;;
		*) err "$inst: ExternalSetHistory failed: the backup of run $OWNER is not in the history"; outcome "$inst" history-failed; echo "quiesce-history $inst failed"; rc=1 ;;
		esac
	done
	exit "$rc"
}

# What preflight reads: each instance from qlist (name, status, mirror type
# and status, state), and for Caché the mirror role from a session.
do_facts() {
	qlist 2>/dev/null | awk -F'^' '$1 != "" { printf "qlist\t%s\t%s\t%s\t%s\t%s\n", $1, $4, $11, $12, $9 }'
	[ "$QUIESCE_PLATFORM" = cache ] || exit 0
	running_instances | while read -r name; do
		case $name in '?'*) continue ;; esac
		# shellcheck disable=SC2016 # ObjectScript, not shell
		printf 'W "quiesce-type=",$SYSTEM.Mirror.GetMemberType(),!\nW "quiesce-status=",$SYSTEM.Mirror.GetMemberStatus(),!\nhalt\n' |
			tool csession "$name" -U %SYS 2>/dev/null | tr -d '\r' |
			awk -v n="$name" '/quiesce-type=/ { sub(/.*quiesce-type=/, ""); t = $0 } /quiesce-status=/ { sub(/.*quiesce-status=/, ""); s = $0 } END { printf "role\t%s\t%s\t%s\n", n, t, s }'
	done
	exit 0
}

do_status() {
	for inst in $(scope); do
		case $inst in
		'!'*) printf '%s down\n' "${inst#!}"; continue ;;
		'?'*) printf '%s hung\n' "${inst#?}"; continue ;;
		esac
		is_suspended "$inst" "$CHECK_SECONDS"
		case $? in 0) s=suspended ;; 1) s=running ;; 3) s=no-answer ;; *) s=unknown ;; esac
		printf '%s %s\n' "$inst" "$s"
	done
	[ -f "$STATE_FILE" ] && awk -F: '{ print "recorded " $1 ":" $2 " by " ($3 == "" ? "vmware" : $3) }' "$STATE_FILE"
	exit 0
}

action=${1:-$QUIESCE_DEFAULT_ACTION}
# VMware's script argument (open-vm-tools: SCRIPT ACTION [scriptArg]) is not ours to read.
if [ $# -gt 1 ]; then log "$action called with the script argument: $(printf '%s' "$2" | tr -c '[:alnum:] ._:/=-' '?' | cut -c1-200)"; fi
case $action in
freeze)
	timeout=${QUIESCE_FREEZE_SECONDS:-$QUIESCE_FREEZE_TIMEOUT}
	case $timeout in '' | *[!0-9]*) err "QUIESCE_FREEZE_SECONDS must be whole seconds, not: $timeout"; exit 2 ;; esac
	[ "$timeout" -gt 1200 ] && timeout=1200
	[ "$timeout" -lt 1 ] && timeout=1
	run_worker ;;
thaw | thawDeferred | freezeFail) run_worker ;;
history) do_history ;;
status) do_status ;;
facts) do_facts ;;
*) err "unknown action: $action (expected freeze, thaw, thawDeferred, freezeFail, history, status or facts)"; exit 2 ;;
esac
