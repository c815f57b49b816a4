#!/usr/bin/env bash
# Chaos soak: N backups on a lab with random faults drawn from the red-team
# matrix, seeded (the seed is printed; pass it back to replay a soak).
#
#   bash tests/soak.sh [N] [SEED]          (as root; N defaults to 20)
#   QUIESCE_BIN=/path/to/quiesce bash tests/soak.sh ...   (soak that binary)
#   SOAK_FAULTS="state-lost clock-back" bash tests/soak.sh ...   (draw only those)
#
# After every run it does what an operator would (runs `quiesce recover`, or
# the printed fix, where quiesce says to; waits for the VMs' own dead-man's
# switches after a killed controller) and then checks the invariants against
# the simulator's ground truth:
#   - no instance is suspended or paused, and no hook records a freeze;
#   - every `valid` verdict is true: the lab's copy of the VM taken by that
#     run's snapshot shows every instance frozen;
#   - the journal reads back and `recover` has nothing left to do;
#   - the exit code equals the one results.json gives;
#   - every run with a valid host is restored and checked by `quiesce verify`
#     (each instance writes a database that tears when a snapshot is taken
#     unfrozen; the lab's snapshot also takes btrfs snapshots of it, which
#     a btrfs playbook verifies), and verify leaves nothing behind.
#     SOAK_VERIFY_EVERY=K verifies every K-th such run only (default 1: all).
# It ends with one line per figure and `N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
runs=${1:-20}
seed=${2:-$(( $(date +%s) % 32768 ))}
RANDOM=$seed
echo "soak: $runs runs, seed $seed (replay: bash tests/soak.sh $runs $seed)"

bash tests/lab/install-deps.sh
if [ -n "${QUIESCE_BIN:-}" ]; then
	quiesce=$QUIESCE_BIN
else
	cargo build --quiet 2>&1 | tail -n 5
	quiesce=${CARGO_TARGET_DIR:-$PWD/target}/debug/quiesce
fi
lab=$PWD/tests/lab/lab.sh
dir=$(mktemp -d /tmp/quiesce-soak-XXXXXX)
verify_every=${SOAK_VERIFY_EVERY:-1}
[[ $verify_every =~ ^[0-9]+$ ]] || { echo "soak: SOAK_VERIFY_EVERY is a number, not $verify_every" >&2; exit 2; }
# The instances' databases and journals on one btrfs file system, mounted
# before the VMs start so that every VM and the lab's snapshot see it.
bt=/mnt/${dir##*/}
trap 'bash "$lab" down "$dir"; umount "$bt" 2> /dev/null; rmdir "$bt" 2> /dev/null; rm -rf "$dir"' EXIT
if ! { mkdir -p "$bt" && truncate -s 2G "$dir/bt.img" && mkfs.btrfs -q -f "$dir/bt.img" && mount -o loop "$dir/bt.img" "$bt"; }; then
	echo "soak: cannot make a btrfs file system at $bt" >&2
	exit 2
fi
vms=(p b g1 g2 x)
mkdir -p "$bt/.snapshots" "$bt/.verify"
for v in "${vms[@]}"; do
	{ mkdir -p "$bt/$v" && btrfs -q subvolume create "$bt/$v/db" && btrfs -q subvolume create "$bt/$v/journal"; } || exit 2
done
bash "$lab" up "$dir" --net 127.0.150 --mirror M=p,b --group g=g1,g2 p=iris:IRIS,VERIFY b=iris:IRIS,VERIFY g1=iris:IRIS,VERIFY g2=iris:IRIS,VERIFY x=iris:IRIS,IRIS2,VERIFY > /dev/null || exit 2
instances_of() { if [ "$1" = x ]; then echo IRIS IRIS2; else echo IRIS; fi; }
# The instances' writers, in the VM (its cgroup: a stun stops them too). A
# restart of the VM's sshd restarts the VM, whose processes all die.
start_writers() { # VM [INSTANCE...] (default: all of VM's)
	local vm=$1 i
	shift
	# shellcheck disable=SC2046 # one word an instance
	[ $# -gt 0 ] || set -- $(instances_of "$vm")
	for i in "$@"; do
		# (In a subshell: not a job of this shell, whose end lab down is.)
		(bash "$lab" exec "$dir" "$vm" sh -c 'echo $$ > "$1/cgroup.procs"; exec setsid iris writer "$2" > /dev/null 2>&1 < /dev/null' sh "/sys/fs/cgroup/freezer/quiesce-lab-$(cat "$dir/vms/$vm/address")" "$i" > /dev/null 2>&1 &)
	done
}
# Each instance: its installation, database and journal there, data=on,
# a writer that never stops; each VM: VERIFY down, not mirrored, outside.
for v in "${vms[@]}"; do
	for i in $(instances_of "$v"); do
		mkdir -p "$bt/$v/db/$i/mgr" "$bt/$v/db/$i/user" "$bt/$v/journal/$i"
		printf '[Databases]\nIRISSYS=%s/mgr/\nUSER=%s/user/\n[Journal]\nCurrentDirectory=%s/\nAlternateDirectory=%s/\n' \
			"$bt/$v/db/$i" "$bt/$v/db/$i" "$bt/$v/journal/$i" "$bt/$v/journal/$i" > "$bt/$v/db/$i/iris.cpf"
		bash "$lab" set "$dir" "$v" "$i" "dir=$bt/$v/db/$i" data=on writer_pause=0.4 > /dev/null
	done
	start_writers "$v"
	mkdir -p "$dir/vms/$v/verify/mgr" "$dir/vms/$v/verify/journal"
	printf '[Databases]\nIRISSYS=%s/mgr/\n[Journal]\nCurrentDirectory=%s/journal/\n' "$dir/vms/$v/verify" "$dir/vms/$v/verify" > "$dir/vms/$v/verify/iris.cpf"
	bash "$lab" set "$dir" "$v" VERIFY status=down "dir=$dir/vms/$v/verify" > /dev/null
	printf '%s 0@db %s\n%s 1@journal %s\n' "$bt/$v/db" "$bt/.snapshots" "$bt/$v/journal" "$bt/.snapshots" > "$dir/vms/$v/btrfs.plan"
done
# The oracle is sensitive: snapshots taken unfrozen while the writers run
# hold torn blocks often (else a verify that passes would prove nothing).
sleep 1
torn=0
for k in $(seq 1 10); do
	btrfs -q subvolume snapshot -r "$bt/p/db" "$bt/.snapshots/unfrozen-$k"
	bash "$lab" exec "$dir" p iris integrity "$bt/.snapshots/unfrozen-$k/IRIS/user" > /dev/null 2>&1 || torn=$((torn + 1))
	btrfs -q subvolume delete "$bt/.snapshots/unfrozen-$k"
	sleep 0.$(( (k * 37) % 10 ))
done
echo "soak: $torn of 10 snapshots taken unfrozen hold a torn block"
[ "$torn" -gt 0 ] || { echo "soak: the writers tear nothing: verification would prove nothing" >&2; exit 2; }
q() { "$quiesce" -i "$dir/inventory.yml" --known-hosts "$dir/known_hosts" --no-agent --runs-dir "$dir/runs" "$@"; }
q deploy --quiet > /dev/null || { echo "soak: deploy failed" >&2; exit 2; }
# Short freezes so that a soak is quick: snapshot 3 s, margin 5 s.
sed -i -e 's/timeout: 20s/timeout: 3s/' -e 's/freeze_margin: 10s/freeze_margin: 5s/' "$dir/playbook.yml"

# The lab's snapshot is told the run: it names its btrfs snapshots by it.
sed -i "s|snapshot $dir {host}'|snapshot $dir {host} {run_id}'|" "$dir/playbook.yml"
default_snapshot=$(grep '^snapshot:' "$dir/playbook.yml")
# What verify restores the run's btrfs snapshots with.
{
	grep -v '^snapshot:' "$dir/playbook.yml"
	printf 'snapshot: { provider: btrfs, btrfs: { dir: %s/.snapshots }, timeout: 3s }\n' "$bt"
	printf 'verify: { instance: VERIFY, clone_dir: %s/.verify, timeout: 2m }\n' "$bt"
} > "$dir/verify.yml"

set_snapshot() { # COMMAND (LAB and DIR as in the tests)
	local command=${1//LAB/bash $lab}
	command=${command//DIR/$dir}
	command=${command//snapshot $dir \{host\}/snapshot $dir \{host\} \{run_id\}}
	grep -v '^snapshot:' "$dir/playbook.yml" > "$dir/playbook.tmp"
	printf "snapshot: { on: controller, command: '%s', timeout: 3s }\n" "$command" >> "$dir/playbook.tmp"
	mv "$dir/playbook.tmp" "$dir/playbook.yml"
}
reset_snapshot() {
	grep -v '^snapshot:' "$dir/playbook.yml" > "$dir/playbook.tmp"
	printf '%s\n' "${default_snapshot/timeout: 20s/timeout: 3s}" >> "$dir/playbook.tmp"
	mv "$dir/playbook.tmp" "$dir/playbook.yml"
}
latest_run() { find "$dir/runs" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' 2>/dev/null | sort | tail -n 1; }
wait_journal() { # PATTERN OLD_RUN: until a run newer than OLD_RUN has a journal line matching PATTERN (10 s at most)
	local run
	for _ in $(seq 1 100); do
		run=$(latest_run)
		[ -n "$run" ] && [ "$run" != "$2" ] && grep -q "$1" "$dir/runs/$run/journal.jsonl" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# Every instance of VM: "INST frozen paused" per line, from the simulator itself.
truth() {
	bash "$lab" exec "$dir" "$1" sh -c 'for d in /etc/irissim/*/; do i=$(basename "$d"); frozen=0 paused=0; [ -f "$d/state" ] && . "$d/state"; echo "$i $frozen $paused"; done; [ -s /run/quiesce/frozen ] && echo "recorded $(tr "\n" " " < /run/quiesce/frozen)"; true'
}
all_thawed() {
	local vm
	for vm in "${vms[@]}"; do
		truth "$vm" | grep -qvE '^[A-Z0-9]+ 0 0$' && return 1
	done
	return 0
}
force_thaw() { # leave the lab clean for the next run, whatever happened
	local vm
	for vm in "${vms[@]}"; do
		bash "$lab" exec "$dir" "$vm" sh -c 'for d in /etc/irissim/*/; do iris session "$(basename "$d")" -U %SYS "##Class(Backup.General).ExternalThaw(\"/dev/null\")" >/dev/null 2>&1; done; rm -f /run/quiesce/frozen' || true
	done
}

# Every fault of the previous run undone, on every VM and instance.
undo_faults() {
	local v
	for v in "${vms[@]}"; do
		bash "$lab" snapshot-fault "$dir" "$v" none
		bash "$lab" clear-faults "$dir" "$v" IRIS
		bash "$lab" set "$dir" "$v" IRIS wd_limit_override=0 > /dev/null
		bash "$lab" unstun "$dir" "$v"
	done
	bash "$lab" clear-faults "$dir" x IRIS2
	# The clock and /run of the previous run's fault.
	for v in "${vms[@]}"; do
		bash "$lab" clock "$dir" "$v" 0
		bash "$lab" exec "$dir" "$v" sh -c "umount /run/quiesce 2>/dev/null; if mountpoint -q /run/lab-keep; then umount '$dir'; umount /tmp; umount /run/lab-keep; fi; true"
	done
	bash "$lab" set "$dir" x IRIS2 wd_limit_override=0 > /dev/null
}

declare -A injected=()
valid_runs=0 verified_runs=0 verified_instances=0 unverified=0
left_frozen=0 false_valid=0 bad_journal=0 bad_exit=0 failures=0
faults=(none none snapshot-fail snapshot-hang freeze-fail thaw-fail-once wd-resumed stun kill-snapshot kill-freeze sigint sigterm sighup dba-thaw hook-chmod hung-session sshd-restart state-lost run-full tmp-full aba-freeze clock-back clock-forward)
if [ -n "${SOAK_FAULTS:-}" ]; then
	read -r -a wanted <<< "$SOAK_FAULTS"
	for f in "${wanted[@]}"; do
		case " ${faults[*]} " in *" $f "*) ;; *) echo "soak: no fault named $f (known: ${faults[*]})" >&2; exit 2 ;; esac
	done
	faults=("${wanted[@]}")
fi

for n in $(seq 1 "$runs"); do
	fault=${faults[RANDOM % ${#faults[@]}]}
	vm=${vms[RANDOM % ${#vms[@]}]}
	injected[$fault]=$(( ${injected[$fault]:-0} + 1 ))
	inst=IRIS
	[ "$vm" = x ] && [ $((RANDOM % 2)) = 1 ] && inst=IRIS2
	reset_snapshot
	undo_faults
	signal='' kill_at=''
	case $fault in
	snapshot-fail) bash "$lab" snapshot-fault "$dir" "$vm" fail ;;
	snapshot-hang) bash "$lab" snapshot-fault "$dir" "$vm" "hang 10" ;;
	freeze-fail) bash "$lab" fault "$dir" "$vm" "$inst" freeze=fail ;;
	thaw-fail-once) bash "$lab" fault "$dir" "$vm" "$inst" thaw=fail_once ;;
	wd-resumed) bash "$lab" set "$dir" "$vm" "$inst" wd_limit_override=1 > /dev/null; bash "$lab" snapshot-fault "$dir" "$vm" "stun 1.5" ;;
	stun) set_snapshot "LAB snapshot DIR {host} && if [ {host} = $vm ]; then LAB stun DIR {host}; (sleep 4; LAB unstun DIR {host}) >/dev/null 2>&1 & fi" ;;
	kill-snapshot) bash "$lab" snapshot-fault "$dir" "$vm" "hang 10"; signal=KILL kill_at="snapshot-started.*\"$vm\"" ;;
	kill-freeze) bash "$lab" fault "$dir" "$vm" "$inst" hang_freeze=2; signal=KILL kill_at="freeze-started.*\"$vm\"" ;;
	sigint | sigterm | sighup) bash "$lab" snapshot-fault "$dir" "$vm" "hang 10"; signal=${fault#sig}; signal=${signal^^}; kill_at="snapshot-started.*\"$vm\"" ;;
	dba-thaw) set_snapshot "if [ {host} = $vm ]; then LAB exec DIR {host} iris session $inst -U %SYS \"##Class(Backup.General).ExternalThaw(\\\"/dev/null\\\")\"; fi; LAB snapshot DIR {host}" ;;
	hook-chmod) set_snapshot "LAB snapshot DIR {host} && if [ {host} = $vm ]; then LAB exec DIR {host} chmod 0755 /usr/sbin/post-thaw-script; fi" ;;
	hung-session) set_snapshot "LAB snapshot DIR {host} && if [ {host} = $vm ]; then LAB signal DIR {host} STOP quiesce-freeze; fi" ;;
	# The VM's record of the freeze removed during the snapshot (tmpfiles, an admin).
	state-lost) set_snapshot "if [ {host} = $vm ]; then LAB exec DIR {host} rm -f /run/quiesce/frozen; fi; LAB snapshot DIR {host}" ;;
	# /run/quiesce full before the freeze: that VM freezes nothing.
	run-full) bash "$lab" exec "$dir" "$vm" sh -c 'mkdir -p /run/quiesce && mount -t tmpfs -o size=4k q /run/quiesce && dd if=/dev/zero of=/run/quiesce/fill bs=4k count=8 2>/dev/null; true' ;;
	# The VM's /tmp full for the whole run (the lab's own files bound back in).
	tmp-full) bash "$lab" exec "$dir" "$vm" sh -c "mkdir -p /run/lab-keep && mount --bind '$dir' /run/lab-keep && mount -t tmpfs -o size=64k full /tmp && mkdir -p '$dir' && mount --bind /run/lab-keep '$dir' && dd if=/dev/zero of=/tmp/fill bs=4k count=64 2>/dev/null; true" ;;
	# Someone else thaws and freezes again during the snapshot (ABA).
	aba-freeze) set_snapshot "if [ {host} = $vm ]; then LAB exec DIR {host} iris session $inst -U %SYS \"##Class(Backup.General).ExternalThaw(\\\"/dev/null\\\")\"; LAB snapshot DIR {host}; LAB exec DIR {host} iris session $inst -U %SYS \"##Class(Backup.General).ExternalFreeze(\\\"/dev/null\\\")\"; true; else LAB snapshot DIR {host}; fi" ;;
	# The VM's clock stepped back or forward 10 minutes during the snapshot (NTP, time sync).
	clock-back | clock-forward)
		step=-600; [ "$fault" = clock-forward ] && step=600
		set_snapshot "if [ {host} = $vm ]; then LAB clock DIR {host} $step; fi; LAB snapshot DIR {host}" ;;
	sshd-restart) set_snapshot "LAB snapshot DIR {host} && if [ {host} = $vm ]; then LAB kill-sshd DIR {host}; (sleep 2; LAB restart-sshd DIR {host}) >/dev/null 2>&1 & fi" ;;
	esac

	before=$(latest_run)
	# Started directly (not through a function): $! must be quiesce itself.
	"$quiesce" -i "$dir/inventory.yml" --known-hosts "$dir/known_hosts" --no-agent --runs-dir "$dir/runs" \
		backup -p "$dir/playbook.yml" --command-timeout 5s --connect-timeout 2s > "$dir/out" 2> "$dir/err" &
	pid=$!
	killed=0
	if [ -n "$signal" ]; then
		if wait_journal "$kill_at" "$before"; then kill "-$signal" "$pid" 2> /dev/null; [ "$signal" = KILL ] && killed=1; fi
	fi
	{ wait "$pid"; } 2> /dev/null # no "Killed" job notice
	code=$?
	run=$(latest_run)
	[ "$run" != "$before" ] || run=''
	verdict="exit $code: $(sed -n 's/^backup lab (run [^)]*): //p' "$dir/out" | sed 's/; times are UTC//')"
	[ "$code" = 2 ] && verdict="$verdict $(tail -n 3 "$dir/err" | tr '\n' ' ')"

	# What an operator does next.
	if [ "$fault" = hung-session ]; then bash "$lab" signal "$dir" "$vm" CONT quiesce-freeze; fi
	if [ "$fault" = sshd-restart ]; then
		sleep 2
		# The restarted VM's instances come back up with their writers.
		for _ in $(seq 1 50); do (exec 3<> "/dev/tcp/$(cat "$dir/vms/$vm/address")/22") 2> /dev/null && break; sleep 0.1; done
		start_writers "$vm"
	fi
	# The other party of an ABA ends its own freeze (it is not quiesce's to thaw).
	if [ "$fault" = aba-freeze ]; then bash "$lab" exec "$dir" "$vm" iris session "$inst" -U %SYS '##Class(Backup.General).ExternalThaw("/dev/null")' > /dev/null 2>&1; fi
	if [ "$killed" = 1 ]; then
		# The VMs' own switches thaw (end of input); then recover checks.
		for _ in $(seq 1 150); do all_thawed && break; sleep 0.1; done
	fi
	if [ -n "$run" ] && { [ "$code" = 5 ] || [ "$killed" = 1 ]; }; then
		fix=$(sed -n 's/^ *Thaw it now: \(.*\)$/\1/p' "$dir/out" | head -n 1 | sed 's/   #.*//')
		if [ -n "$fix" ]; then
			PATH="$(dirname "$quiesce"):$PATH" sh -c "$fix" > "$dir/fix.out" 2>&1 || verdict="$verdict; printed fix failed"
		else
			q recover "$run" > "$dir/fix.out" 2>&1 || verdict="$verdict; recover exit $?"
		fi
	fi

	# Invariants, on the simulator's ground truth.
	problems=()
	if ! all_thawed; then
		for v in "${vms[@]}"; do truth "$v" | grep -vE '^[A-Z0-9]+ 0 0$' | sed "s/^/$v: /"; done > "$dir/frozen"
		problems+=("LEFT FROZEN: $(tr '\n' ';' < "$dir/frozen")")
		left_frozen=$((left_frozen + 1))
		force_thaw
	fi
	# The run's valid hosts: each checked against its copy, then verified.
	valid_hosts=''
	if [ -n "$run" ] && [ -f "$dir/runs/$run/results.json" ]; then
		want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exit_code"])' "$dir/runs/$run/results.json")
		if [ "$killed" = 0 ] && [ "$want" != "$code" ]; then
			problems+=("exit $code but results.json says $want"); bad_exit=$((bad_exit + 1))
		fi
		valid_hosts=$(python3 -c 'import json,sys; print(" ".join(h["host"] for h in json.load(open(sys.argv[1]))["hosts"] if h["outcome"] == "valid"))' "$dir/runs/$run/results.json")
		for host in $valid_hosts; do
			copy=$(find "$dir/vms/$host/snapshots" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
			if grep -L '^frozen=1$' "$dir/vms/$host/snapshots/$copy"/irissim/*/state 2> /dev/null | grep -v '/VERIFY/state$' | grep -q .; then
				problems+=("FALSE VALID: $host's snapshot saw a running instance"); false_valid=$((false_valid + 1))
			fi
		done
	fi
	if [ -n "$run" ]; then
		if ! python3 -c 'import json,sys
bad = 0
for l in open(sys.argv[1], "rb").read().split(b"\n")[:-1]:
    try: json.loads(l)
    except Exception: bad += 1
sys.exit(1 if bad else 0)' "$dir/runs/$run/journal.jsonl"; then
			problems+=("journal has unreadable lines"); bad_journal=$((bad_journal + 1))
		fi
		again=$(q recover "$run" 2>&1)
		case $again in *"nothing was left frozen"* | *"recovered"*) ;; *) problems+=("recover: $again"); bad_journal=$((bad_journal + 1)) ;; esac
	fi
	if [ "$fault" = hook-chmod ]; then q deploy --quiet --force > /dev/null 2>&1; fi
	# Every instance still writes (else a verify would prove little).
	for v in "${vms[@]}"; do
		for i in $(instances_of "$v"); do
			if ! bash "$lab" exec "$dir" "$v" sh -c 'kill -0 "$(cat "/etc/irissim/$1/writer.pid")"' sh "$i" 2> /dev/null; then
				problems+=("WRITER GONE: $v $i")
				start_writers "$v" "$i"
			fi
		done
	done
	# A run that made a valid backup: restored from its marker and checked.
	if [ -n "$valid_hosts" ]; then valid_runs=$((valid_runs + 1)); fi
	if [ -n "$valid_hosts" ] && [ "$verify_every" -gt 0 ] && [ $((valid_runs % verify_every)) = 0 ]; then
		# The run's faults are the backup's, not the verification's.
		undo_faults
		for h in $valid_hosts; do
			for _ in $(seq 1 50); do (exec 3<> "/dev/tcp/$(cat "$dir/vms/$h/address")/22") 2> /dev/null && break; sleep 0.1; done
		done
		q verify "$run" -p "$dir/verify.yml" > "$dir/verify.out" 2> "$dir/verify.err"
		vcode=$?
		verified_runs=$((verified_runs + 1))
		verified_instances=$((verified_instances + $(grep -c '^verified: ' "$dir/verify.out")))
		if [ "$vcode" != 0 ]; then
			problems+=("VALID BUT NOT VERIFIED (exit $vcode): $(grep -hvE '^(  |verified: )' "$dir/verify.out" "$dir/verify.err" | head -n 4 | tr '\n' ';')")
			unverified=$((unverified + 1))
		fi
		# And nothing of it is left: no clone, every VERIFY down.
		left=$(find "$bt/.verify" -mindepth 1 -maxdepth 1 -printf '%f ')
		for v in "${vms[@]}"; do
			bash "$lab" exec "$dir" "$v" iris qlist VERIFY | cut -d^ -f4 | grep -q '^down' || left="$left VERIFY up on $v"
		done
		[ -z "$left" ] || problems+=("VERIFY LEFT: $left")
	fi
	if [ ${#problems[@]} -gt 0 ]; then
		failures=$((failures + 1))
		printf 'run %3d  %-14s %-3s %-6s %s  FAIL: %s\n' "$n" "$fault" "$vm" "$inst" "$verdict" "${problems[*]}"
		sed 's/^/    | /' "$dir/out" "$dir/err" | tail -n 30
	else
		printf 'run %3d  %-14s %-3s %-6s %s  ok\n' "$n" "$fault" "$vm" "$inst" "$verdict"
	fi
done

echo
echo "soak figures (seed $seed): runs $runs"
for k in "${!injected[@]}"; do printf '  %-14s %d\n' "$k" "${injected[$k]}"; done | sort
echo "  left frozen: $left_frozen, false valid: $false_valid, unreadable journals: $bad_journal, exit code mismatches: $bad_exit"
echo "  runs with a valid backup: $valid_runs, verified: $verified_runs ($verified_instances instances), valid but not verified: $unverified"
echo "soak: $((runs - failures)) passed, $failures failed"
[ "$failures" = 0 ]
