# Args: PLATFORM CLONE_DIR VERIFY RUN HOST, then any number of
#   snap SNAPSHOT SOURCE       a read-only btrfs snapshot of the run, of subvolume SOURCE
#   volume VOLUME SOURCE       an EBS volume made from one of the run's snapshots and
#                              attached here, of the file system mounted at SOURCE on HOST
#   db INSTANCE DIR            a database directory of INSTANCE (as the backup saw it)
#   restore INSTANCE FILE OFFSET   where INSTANCE's journal restore starts
#   command SECONDS COMMAND    the site's check, run after the integrity check
# Restores the run's backup of each INSTANCE in a writable clone and checks
# it, with the verification instance VERIFY (installed once on the VM, never
# mirrored): clones every snapshot into CLONE_DIR/RUN@HOST (a writable btrfs
# snapshot, or the attached volume mounted; the VM is HOST itself for btrfs
# and a scratch instance for EBS), points VERIFY's
# CPF at the clone (its databases and journal there; no mirror and no ECP
# sections), starts VERIFY in emergency access (one login, made up here)
# without startup routines (nostu), checks that every database mounts,
# restores the journal from the run's file and marker (open transactions
# rolled back), runs the integrity check on every database, stops VERIFY.
# Says `verify-step INSTANCE STEP ok|fail SECONDS DETAIL`,
# `verify-evidence INSTANCE LINE` and `verify-result INSTANCE ok|fail REASON`.
# Whatever ends it (an error, a signal, the controller gone), VERIFY is
# stopped, its CPF put back and the clone removed. With no copy named, it only
# cleans up what a killed verify of RUN left (`quiesce recover`), and says
# `verify-cleaned HOST some|none` (whether anything was left). One verify
# at a time uses VERIFY (a lock in its directory, whoever runs it).
platform=$1 clone_dir=$2 verify=$3 run=$4 host=$5
shift 5
say() { printf '%s\n' "$*" 2>/dev/null || :; }
tab=$(printf '\t')
snaps='' dbs='' restores='' site_cmd='' site_secs=600
while [ $# -gt 0 ]; do
	case $1 in
	snap) [ $# -ge 3 ] || exit 2; snaps="${snaps}snap$tab$2$tab$3
"; shift 3 ;;
	volume) [ $# -ge 3 ] || exit 2; snaps="${snaps}volume$tab$2$tab$3
"; shift 3 ;;
	db) [ $# -ge 3 ] || exit 2; dbs="$dbs$2$tab$3
"; shift 3 ;;
	restore) [ $# -ge 4 ] || exit 2; restores="$restores$2$tab$3$tab$4
"; shift 4 ;;
	command) [ $# -ge 3 ] || exit 2; site_secs=$2 site_cmd=$3; shift 3 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done
if [ "$platform" = cache ]; then
	stop() { ccontrol stop "$1" quietly; }
	qlist() { ccontrol qlist; }
else
	stop() { iris stop "$1" quietly; }
	qlist() { iris qlist; }
fi
now() { cut -d' ' -f1 /proc/uptime 2>/dev/null || date +%s; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail_all() { # REASON
	printf '%s' "$restores$dbs" | cut -f1 | sort -u | while read -r i; do
		[ -n "$i" ] && say "verify-result $i fail $1"
	done
	exit 1
}

vline=$(qlist 2>/dev/null | awk -F'^' -v n="$verify" '$1 == n { print; exit }')
[ -n "$vline" ] || fail_all "the verification instance $verify is not installed on $host (qlist does not list it): install one, not mirrored, and name it in verify.instance"
vdir=$(printf '%s' "$vline" | cut -d'^' -f2 | sed 's:/*$::')
vstatus=$(printf '%s' "$vline" | cut -d'^' -f4)
vcpf=$(printf '%s' "$vline" | cut -d'^' -f5)
case $vcpf in '' | */* | *[!A-Za-z0-9_.-]*) vcpf=iris.cpf ;; esac
cpf=$vdir/$vcpf
saved=$cpf.quiesce-verify
work=$clone_dir/$run@$host
started=''
case $site_secs in '' | *[!0-9]*) site_secs=600 ;; esac

# Before the teardown is armed: a verify that finds VERIFY in use leaves
# the other one's clone, CPF and instance alone. Every child started below
# gets fd 9 closed, so the lock ends with this script.
if command -v flock > /dev/null 2>&1; then
	exec 9> "$vdir/.quiesce-verify.lock" || fail_all "cannot open the lock $vdir/.quiesce-verify.lock"
	if ! flock -n 9; then
		busy="another verify is using the verification instance $verify on $host now: wait for it to end (its clone, CPF and instance are left alone)"
		[ -n "$snaps" ] || say "verify-warning $busy"
		say verify-torn-down
		fail_all "$busy"
	fi
fi

remove_clones() {
	if [ -d "$work" ]; then
		for c in "$work"/*; do
			if mountpoint -q -- "$c" 2> /dev/null; then
				# An attached volume: unmounted, so that it can be detached.
				umount -- "$c" 2> /dev/null || umount -l -- "$c" || say "verify-warning could not unmount $c"
				rmdir -- "$c" 2> /dev/null || :
			elif [ -d "$c" ] && [ ! -L "$c" ]; then
				btrfs subvolume delete -- "$c" > /dev/null 2>&1 || rm -rf --one-file-system -- "$c" || say "verify-warning could not remove the clone $c: btrfs subvolume delete $c"
			elif [ -e "$c" ] || [ -L "$c" ]; then
				rm -f -- "$c"
			fi
		done
		rmdir -- "$work" 2>/dev/null || say "verify-warning could not remove $work: $(find "$work" -mindepth 1 -maxdepth 1 2>&1 | head -n 3 | tr '\n' ' ')"
	fi
}
# shellcheck disable=SC2317 # run by the EXIT trap
teardown() {
	trap '' HUP INT TERM
	if [ -n "$started" ]; then stop "$verify" > /dev/null 2>&1 || :; fi
	if [ -f "$saved" ]; then mv -f -- "$saved" "$cpf" || say "verify-warning could not put back $cpf from $saved"; fi
	remove_clones
	# Said last: the controller then knows nothing is left (verify.jsonl).
	say verify-torn-down
}
trap teardown EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# What a verify that was stopped hard left behind: its CPF copy says so.
left=none
{ [ -f "$saved" ] || [ -d "$work" ]; } && left=some
case $vstatus in
down*) ;;
*)
	[ -f "$saved" ] || fail_all "the verification instance $verify is running: stop it (quiesce starts and stops it itself)"
	stop "$verify" > /dev/null 2>&1 || fail_all "the verification instance $verify was left running by an earlier verify and does not stop"
	;;
esac
[ -f "$saved" ] && { mv -f -- "$saved" "$cpf" || fail_all "cannot put back $cpf from $saved"; }
[ -f "$cpf" ] || fail_all "the verification instance's configuration $cpf is not there"
remove_clones
# No snapshot named: only the clean-up of a verify that was killed (recover).
if [ -z "$snaps" ]; then
	say "verify-cleaned $host $left"
	exit 0
fi
mkdir -p -- "$work" || fail_all "cannot create $work"
cp -p -- "$cpf" "$saved" || fail_all "cannot keep a copy of $cpf"

t0=$(now)
n=0 map=''
what=''
while IFS="$tab" read -r kind snap src; do
	[ -n "$snap" ] || continue
	case $kind in
	snap)
		if ! out=$(btrfs subvolume snapshot -- "$snap" "$work/$n" 2>&1); then
			fail_all "cannot clone $snap: $out"
		fi
		what='writable btrfs clones' ;;
	volume)
		case $snap in vol-*[!0-9a-f]* | vol-) fail_all "not a volume id: $snap" ;; vol-*) ;; *) fail_all "not a volume id: $snap" ;; esac
		# Found by the name a Nitro instance gives it (its serial is the
		# volume id); it may take a moment to appear once attached.
		dev=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol${snap#vol-}
		i=0
		while [ ! -e "$dev" ] && [ "$i" -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
		[ -e "$dev" ] || fail_all "volume $snap is not attached here ($dev does not appear)"
		mkdir -p -- "$work/$n" || fail_all "cannot create $work/$n"
		if ! out=$(mount -- "$dev" "$work/$n" 2>&1) && ! out=$(mount -o nouuid -- "$dev" "$work/$n" 2>&1); then
			fail_all "cannot mount volume $snap ($dev): $out"
		fi
		what='EBS volumes from the snapshots, mounted' ;;
	esac
	map="$map${src%/}$tab$work/$n
"
	n=$((n + 1))
done <<EOF
$snaps
EOF
[ "$n" -gt 0 ] || fail_all "the run has no snapshot of $host to clone"
clone_secs=$(since "$t0")

# The clone's path of PATH: under the longest source it lies in.
in_clone() { # PATH
	printf '%s' "$map" | awk -F'\t' -v p="$1" '
		NF == 2 && (p == $1 || index(p, $1 "/") == 1) && length($1) >= best { best = length($1); to = $2 substr(p, length($1) + 1) }
		END { if (best == "") exit 1; print to }'
}

verify_one() { # INSTANCE
	inst=$1
	say "verify-step $inst clone ok $clone_secs $n $what in $work"
	point=$(printf '%s' "$restores" | awk -F'\t' -v i="$inst" '$1 == i { print $2 "\t" $3; exit }')
	jfile=$(printf '%s' "$point" | cut -f1) joff=$(printf '%s' "$point" | cut -f2)
	case $jfile in
	/*) ;;
	*) say "verify-result $inst fail the run recorded no journal file for $inst (its freeze did not say where a restore starts): it cannot be restored from its marker"; return ;;
	esac
	case $joff in '' | *[!0-9]*) joff=0 ;; esac
	cj=$(in_clone "$jfile") || { say "verify-result $inst fail journal file $jfile is not on a snapshotted subvolume: the backup cannot be restored from its marker"; return; }
	if [ ! -f "$cj" ]; then
		say "verify-step $inst journal fail 0 $jfile is not in the copy ($cj)"
		say "verify-result $inst fail journal file $jfile recorded by the run is missing from the copy ($cj): the backup cannot be restored from its marker"
		return
	fi
	say "verify-step $inst journal ok 0 $jfile (marker at offset $joff) is in the copy"
	# The verification instance's CPF: its own settings but the databases
	# (the clone's), the journal (a directory of its own in the clone), and
	# no mirror or ECP: it connects to nothing of production.
	cdbs='' redirect='' lb=''
	k=0
	while IFS="$tab" read -r i d; do
		[ "$i" = "$inst" ] || continue
		c=$(in_clone "$d") || { say "verify-result $inst fail database $d is not on a snapshotted subvolume"; return; }
		c=${c%/}/
		k=$((k + 1))
		cdbs="$cdbs${tab}DB$k=$c"
		redirect="$redirect,r.Redirect(\"${d%/}/\")=\"$c\""
		lb="$lb,\"$c\""
	done <<EOF
$dbs
EOF
	[ "$k" -gt 0 ] || { say "verify-result $inst fail the run names no database of $inst"; return; }
	mkdir -p -- "$work/journal-$inst" || { say "verify-result $inst fail cannot create $work/journal-$inst"; return; }
	sys=$(awk -F= '/^\[/ { s = ($0 == "[Databases]"); next } s && $1 == "IRISSYS" { print; exit }' "$saved")
	{
		awk '/^\[/ { skip = ($0 ~ /^\[(Databases|Journal|MirrorMember|Mirrors|MapMirrors|ECPServers|ECP)\]$/) } !skip' "$saved"
		printf '[Databases]\n'
		[ -z "$sys" ] || printf '%s\n' "$sys"
		printf '%s' "$cdbs" | tr '\t' '\n' | sed '/^$/d'
		printf '[Journal]\nCurrentDirectory=%s/\nAlternateDirectory=%s/\n' "$work/journal-$inst" "$work/journal-$inst"
	} > "$cpf" || { say "verify-result $inst fail cannot write $cpf"; return; }
	# One login, made up for this start, given on standard input only.
	pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	t=$(now)
	# shellcheck disable=SC2016 # the inner shell expands them
	if ! out=$(timeout 600 sh -c 'if [ "$1" = cache ]; then ccontrol start "$2" "$3" nostu; else iris start "$2" "$3" nostu; fi' sh "$platform" "$verify" "EmergencyId=quiesce-verify,$pw" 2>&1 < /dev/null 9>&-); then
		say "verify-step $inst start fail $(since "$t") $(printf '%s' "$out" | tr '\n' ' ')"
		say "verify-result $inst fail the verification instance $verify did not start on the clone: $(printf '%s' "$out" | tail -n 1)"
		return
	fi
	started=1
	say "verify-step $inst start ok $(since "$t") $verify started in emergency access, without startup routines (nostu)"
	t=$(now)
	report=$work/integrity-$inst.txt
	# shellcheck disable=SC2016 # the inner shell expands them
	answer=$({
		printf 'quiesce-verify\n%s\n' "$pw"
		printf '%s\n' "$lb" | tr ',' '\n' | sed -n 's/^"\(.*\)"$/\1/p' | while read -r c; do
			printf 'W "quiesce-mounted %s=",##class(SYS.Database).%%OpenId("%s").Mounted,!\n' "$c" "$c"
		done
		printf 'S r=##class(%%SYS.Journal.Restore).%%New(),r.FirstFile="%s",r.StartOffset=%s,r.RollBack=1%s W "quiesce-restored=",r.Run(),!\n' "$cj" "$joff" "$redirect"
		# shellcheck disable=SC2016 # ObjectScript, not shell
		printf 'W "quiesce-integrity=",$$CheckList^Integrity("%s",$lb(%s)),!\n' "$report" "${lb#,}"
		printf 'halt\n'
	} | timeout 1800 sh -c 'if [ "$1" = cache ]; then csession "$2" -U %SYS; else iris session "$2" -U %SYS; fi' sh "$platform" "$verify" 2>&1 9>&-)
	printf '%s\n' "$answer" | sed -nE 's/^quiesce-restore-(applied|rolledback|error) /journal \1 /p' | while read -r l; do say "verify-evidence $inst $l"; done
	[ -f "$report" ] && sed 's/^/integrity /' "$report" | while read -r l; do say "verify-evidence $inst $l"; done
	unmounted=$(printf '%s\n' "$answer" | sed -n 's/^quiesce-mounted \(.*\)=0$/\1/p' | tr '\n' ' ')
	if [ -n "$unmounted" ]; then
		say "verify-step $inst mount fail $(since "$t") not mounted: $unmounted"
		say "verify-result $inst fail databases did not mount in the copy: $unmounted"
	elif ! printf '%s\n' "$answer" | grep -q '^quiesce-mounted '; then
		say "verify-result $inst fail the verification instance took no session: $(printf '%s' "$answer" | tail -n 2 | tr '\n' ' ')"
	elif ! printf '%s\n' "$answer" | grep -qx 'quiesce-restored=1'; then
		why=$(printf '%s\n' "$answer" | sed -n 's/^quiesce-restore-error //p' | head -n 1)
		say "verify-step $inst restore fail $(since "$t") ${why:-the journal restore failed}"
		say "verify-result $inst fail the journal restore from $jfile offset $joff failed: ${why:-see the evidence}"
	elif ! printf '%s\n' "$answer" | grep -qx 'quiesce-integrity=1'; then
		say "verify-step $inst restore ok $(since "$t") from $jfile offset $joff"
		why=$(grep -m 1 ERROR "$report" 2>/dev/null)
		say "verify-step $inst integrity fail $(since "$t") ${why:-the integrity check failed}"
		say "verify-result $inst fail the integrity check found errors: ${why:-see the evidence}"
	else
		say "verify-step $inst restore ok $(since "$t") from $jfile offset $joff"
		say "verify-step $inst integrity ok $(since "$t") $k databases, no errors"
		if [ -z "$site_cmd" ]; then
			say "verify-result $inst ok restored from $jfile offset $joff and checked: $k databases, no errors"
		else
			site_check "$inst" "$k"
		fi
	fi
	stop "$verify" > /dev/null 2>&1 || say "verify-warning $verify did not stop"
	started=''
	cp -p -- "$saved" "$cpf" || :
}

# The site's own check (verify.command), with the instance still up on the
# clone; its environment says which instance, which clone, and the login.
site_check() { # INSTANCE DATABASES
	t=$(now)
	out=$(QUIESCE_VERIFY_INSTANCE=$verify QUIESCE_INSTANCE=$1 QUIESCE_RUN_ID=$run QUIESCE_HOST=$host \
		QUIESCE_PLATFORM=$platform QUIESCE_CLONE_DIR=$work QUIESCE_DATABASES=$(printf '%s' "$lb" | tr -d '"' | sed 's/^,//') \
		QUIESCE_VERIFY_USER=quiesce-verify QUIESCE_VERIFY_PASSWORD=$pw \
		timeout -k 5 "$site_secs" sh -c "$site_cmd" 2>&1 < /dev/null 9>&-)
	rc=$?
	printf '%s\n' "$out" | sed '/^$/d' | tail -n 50 | while read -r l; do say "verify-evidence $1 command $l"; done
	last=$(printf '%s\n' "$out" | sed '/^$/d' | tail -n 1)
	if [ "$rc" = 0 ]; then
		say "verify-step $1 command ok $(since "$t") verify.command exited 0"
		say "verify-result $1 ok restored from $jfile offset $joff and checked: $2 databases, no errors; verify.command passed"
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		say "verify-step $1 command fail $(since "$t") verify.command timed out after ${site_secs}s"
		say "verify-result $1 fail the site's verify.command did not finish within ${site_secs}s (verify.command_timeout)"
	else
		say "verify-step $1 command fail $(since "$t") verify.command exited $rc"
		say "verify-result $1 fail the site's verify.command exited $rc${last:+: $last}"
	fi
}

for i in $(printf '%s' "$restores$dbs" | cut -f1 | sort -u); do
	verify_one "$i"
done
exit 0
