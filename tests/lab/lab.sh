#!/usr/bin/env bash
# shellcheck disable=SC2016 # inner `sh -c` scripts expand their own $1, $2
# The quiesce lab: simulated VMs on this machine, each a real OpenSSH sshd in
# its own mount namespace on its own loopback address, with its own host keys,
# /usr/sbin, /etc (overlays), /var/log (bind) and /run (tmpfs), a simulated
# Caché/IRIS installed, and its own freezer cgroup for stun/hang faults.
#
# Each VM also has its own root home directory, so this machine's dotfiles
# never run there.
#
#   lab.sh up DIR [--net 127.0.N] [--port P] [--mirror M=VM,VM,...] [--group G=VM,...] [SPEC...]
#       SPEC = NAME[=PLATFORM[:INST,INST...][:password]]   (default: vm1..vm5=iris:IRIS)
#       --mirror: the first VM is primary, the second backup, the rest DR async members.
#       --group: a consistency group in the playbook.
#       --esxi NAME: an "ESXi host" VM on .99 whose datastore /mnt/vmfs/volumes/datastore1
#       holds every VM's directory (the snapshot command's vmware.log); the inventory
#       names it under esxi_hosts and gives each host `esxi` and `vm_dir`.
#       Writes DIR/inventory.yml, DIR/playbook.yml, DIR/known_hosts, DIR/id_ed25519, DIR/vms/NAME/.
#   lab.sh snapshot DIR VM [RUN]         act like a hypervisor: stun the VM, copy its data,
#                                        append Checkpoint_Unstun to DIR/vms/VM/vmware.log;
#                                        with RUN and DIR/vms/VM/btrfs.plan (lines `SUBVOLUME
#                                        TAIL SNAPDIR`), also a read-only btrfs snapshot of each
#                                        SUBVOLUME, named as the btrfs provider names its own
#                                        (SNAPDIR/quiesce@RUN@VM@TAIL) and printed as an id
#   lab.sh snapshot-fault DIR VM SPEC    the next snapshots of VM: `fail`, `hang SECONDS`,
#                                        `stun SECONDS` (default 0.05), or `none`
#   lab.sh down DIR                      stop every VM of the lab (idempotent)
#   lab.sh exec DIR VM CMD...            run CMD inside the VM (its namespace, as root)
#   lab.sh set DIR VM INST KEY=VALUE...  change a simulated instance's conf
#   lab.sh fault DIR VM INST FAULT...    add faults (freeze=fail, thaw=fail_once, hang=5, ...)
#   lab.sh clear-faults DIR VM INST
#   lab.sh stun DIR VM | unstun DIR VM   freeze / thaw every process of the VM
#   lab.sh kill-sshd DIR VM              the VM's sshd listener dies (host unreachable)
#   lab.sh kill-vm DIR VM                every process of the VM dies (sessions too)
#   lab.sh restart-sshd DIR VM           start the VM's sshd again: same keys, state, /run
#   lab.sh max-sessions DIR VM N         the VM's sshd allows N sessions per connection
#                                        (MaxSessions; the lab's default is 64); sshd restarts
#   lab.sh zone DIR VM ZONE [LANG]       the VM's /etc/localtime (e.g. America/New_York) and its
#                                        sessions' LANG (e.g. de_DE.UTF-8); its sshd restarts
#   lab.sh containerize DIR VM NAME [HOSTDIR:CDIR]  the VM's instances run in container NAME: iris,
#                                        ccontrol and csession exist only through `docker|podman exec
#                                        NAME`. With a volume, the container has a file system of its
#                                        own there: the VM's HOSTDIR is at CDIR (under /mnt) and HOSTDIR
#                                        itself is an empty directory of the container's.
#   lab.sh owner DIR VM INST USER        only USER (created if missing) may open sessions of INST
#   lab.sh certify DIR VM CA_KEY [PRINCIPALS]  the VM's host key gets a host certificate signed by
#                                        CA_KEY (for PRINCIPALS, default its address); sshd restarts
#   lab.sh bastion DIR VM                the VM's sshd logs each forward (LogLevel DEBUG1:
#                                        server_request_direct_tcpip ... target HOST); sshd restarts
#   lab.sh hosts-entry DIR VM NAME ADDR  NAME resolves to ADDR inside VM only (its /etc/hosts): a
#                                        host behind a bastion, unknown to the controller
#   lab.sh signal DIR VM SIG PATTERN     send SIG to the VM's processes whose command line
#                                        contains PATTERN (only this VM's, by its cgroup)
#   lab.sh clock DIR VM SECONDS          step the VM's clock by SECONDS (e.g. -600), as NTP would: a
#                                        `date` of its own, first on PATH (/usr/sbin); 0 removes it.
#                                        The simulator and /proc/uptime keep real time.
#   lab.sh events DIR VM                 the simulator's event log of the VM
#   lab.sh tools DIR VM [ARGS...]        a quiesced snapshot as VMware Tools makes one, inside
#                                        the VM: tests/lab/vmtools-standin ARGS (see its --help);
#                                        --snapshot defaults to this lab's snapshot of VM
#   lab.sh ls DIR                        NAME ADDRESS PID per running VM
set -euo pipefail

LAB_USER=quiesce-lab
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "lab.sh: $*" >&2; exit 2; }

vm_dir() { echo "$1/vms/$2"; }
vm_pid() { cat "$(vm_dir "$1" "$2")/sshd.pid" 2>/dev/null || die "VM $2 is not running in $1"; }
cgroup_of() { echo "/sys/fs/cgroup/freezer/quiesce-lab-$(cat "$(vm_dir "$1" "$2")/address")"; }
in_vm() { local dir=$1 vm=$2; shift 2; nsenter --mount --target "$(vm_pid "$dir" "$vm")" -- "$@"; }

ensure_lab_user() {
	exec 9> /tmp/quiesce-lab-user.lock
	flock 9
	if ! id "$LAB_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir / --shell /bin/sh "$LAB_USER" 2>/dev/null || id "$LAB_USER" >/dev/null
	fi
	# '*' rather than the locked '!': sshd refuses locked accounts even for keys.
	usermod -p '*' "$LAB_USER"
	flock -u 9
}

start_vm() { # DIR NAME ADDRESS PORT PLATFORM INSTANCES SUDOMODE [restart]
	local dir=$1 name=$2 addr=$3 port=$4 platform=$5 instances=$6 sudomode=$7 restart=${8:-}
	local d; d=$(vm_dir "$dir" "$name")
	mkdir -p "$d"/sbin/{u,w} "$d"/etc/{u,w} "$d"/log "$d"/run "$d"/home
	echo "$addr" > "$d/address"
	printf '%s\n' "$port" "$platform" "$instances" "$sudomode" > "$d/spec"
	local cg; cg=$(cgroup_of "$dir" "$name")
	mkdir -p "$cg"
	cat > "$d/sshd_config" <<CONF
ListenAddress $addr:$port
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile $d/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 200:30:400
MaxSessions $(cat "$d/maxsessions" 2>/dev/null || echo 64)
LogLevel $(cat "$d/loglevel" 2>/dev/null || echo VERBOSE)
Subsystem sftp internal-sftp
CONF
	if [ -s "$d/lang" ]; then echo "SetEnv LANG=$(cat "$d/lang")" >> "$d/sshd_config"; fi
	if [ -f "$d/etc/u/ssh/ssh_host_ed25519_key-cert.pub" ]; then
		echo "HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub" >> "$d/sshd_config"
	fi
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --uts --propagation private env NAME="$name" ADDR="$addr" D="$d" CG="$cg" SIM="$here/irissim" \
		PLATFORM="$platform" INSTANCES="$instances" SUDOMODE="$sudomode" LAB_USER="$LAB_USER" RESTART="$restart" sh -euc '
		echo $$ > "$CG/cgroup.procs"
		hostname "$NAME"
		mount -t overlay o -o "lowerdir=/usr/sbin,upperdir=$D/sbin/u,workdir=$D/sbin/w" /usr/sbin
		mount -t overlay o -o "lowerdir=/etc,upperdir=$D/etc/u,workdir=$D/etc/w" /etc
		mount --bind "$D/log" /var/log
		mount --bind "$D/run" /run
		# Its own home: the dotfiles of the controller (a slow or locked .bashrc) never run in a VM.
		mount --bind "$D/home" /root
		mkdir -p /run/sshd /var/log/irissim
		if [ -n "$RESTART" ]; then exec /usr/sbin/sshd -D -f "$D/sshd_config" -E "$D/sshd.log"; fi
		printf "%s %s\n" "$ADDR" "$NAME" >> /etc/hosts
		rm -f /etc/ssh/ssh_host_*
		ssh-keygen -q -t ed25519 -N "" -C "" -f /etc/ssh/ssh_host_ed25519_key
		cp /etc/ssh/ssh_host_ed25519_key.pub "$D/host_key.pub"
		install -m 0755 "$SIM" /usr/sbin/iris
		ln -f /usr/sbin/iris /usr/sbin/ccontrol
		ln -f /usr/sbin/iris /usr/sbin/csession
		ln -f /usr/sbin/iris /usr/sbin/irisstat
		ln -f /usr/sbin/iris /usr/sbin/cstat
		rm -rf /etc/irissim; mkdir -p /etc/irissim
		product=IRIS dir=/usr/irissys version=2024.1.0.262.0
		[ "$PLATFORM" = cache ] && product=Cache dir=/usr/cachesys version=2018.1.5.659.0
		first=1
		for inst in $(echo "$INSTANCES" | tr , " "); do
			mkdir -p "/etc/irissim/$inst"
			printf "status=up\nproduct=%s\nversion=%s\ndir=%s/%s\ndefault=%s\n" "$product" "$version" "$dir" "$inst" "$first" > "/etc/irissim/$inst/conf"
			first=0
		done
		rm -f /etc/sudoers.d/quiesce-lab
		if [ "$SUDOMODE" = nopasswd ]; then
			echo "$LAB_USER ALL=(root) NOPASSWD: ALL" > /etc/sudoers.d/quiesce-lab
		else
			echo "$LAB_USER ALL=(root) ALL" > /etc/sudoers.d/quiesce-lab
		fi
		chmod 0440 /etc/sudoers.d/quiesce-lab
		exec /usr/sbin/sshd -D -f "$D/sshd_config" -E "$D/sshd.log"
	' > "$d/start.log" 2>&1 &
}

wait_listening() { # ADDRESS PORT NAME DIR: this VM's own sshd, not just any listener
	local i d; d=$(vm_dir "$4" "$3")
	for i in $(seq 1 100); do
		if [ -s "$d/sshd.pid" ] && [ -s "$d/host_key.pub" ] && (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	cat "$d/start.log" "$d/sshd.log" >&2 2>/dev/null || true
	die "VM $3 did not start listening on $1:$2"
}

cmd_up() {
	local dir=${1:?usage: lab.sh up DIR [--net 127.0.N] [--port P] [SPEC...]}; shift
	local net=127.0.9 port=22 specs=() mirrors=() groups=() esxi=
	while [ $# -gt 0 ]; do
		case $1 in
		--net) net=$2; shift 2 ;;
		--port) port=$2; shift 2 ;;
		--mirror) mirrors+=("$2"); shift 2 ;;
		--group) groups+=("$2"); shift 2 ;;
		--esxi) esxi=$2; shift 2 ;;
		*) specs+=("$1"); shift ;;
		esac
	done
	[ ${#specs[@]} -gt 0 ] || specs=(vm1 vm2 vm3 vm4 vm5)
	[[ $net =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "--net must be 127.A.B (loopback only), not $net"
	ensure_lab_user
	mkdir -p "$dir/vms"
	dir=$(cd "$dir" && pwd)
	[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C quiesce-lab -f "$dir/id_ed25519"
	cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
	chmod 0644 "$dir/authorized_keys"
	chmod 0755 "$dir"
	: > "$dir/known_hosts"
	local n=11 spec name rest platform instances sudomode names=() addrs=()
	for spec in "${specs[@]}"; do
		name=${spec%%=*}; rest=${spec#"$name"}; rest=${rest#=}
		platform=$(echo "$rest" | cut -d: -f1); platform=${platform:-iris}
		instances=$(echo "$rest" | cut -s -d: -f2)
		sudomode=$(echo "$rest" | cut -s -d: -f3); sudomode=${sudomode:-nopasswd}
		if [ -z "$instances" ]; then if [ "$platform" = cache ]; then instances=CACHE; else instances=IRIS; fi; fi
		[[ $name =~ ^[a-z][a-z0-9-]*$ ]] || die "bad VM name: $name"
		start_vm "$dir" "$name" "$net.$n" "$port" "$platform" "$instances" "$sudomode"
		echo "$name $platform" >> "$dir/vms/.list"
		names+=("$name"); addrs+=("$net.$n"); n=$((n + 1))
	done
	if [ -n "$esxi" ]; then start_vm "$dir" "$esxi" "$net.99" "$port" iris "" nopasswd; fi
	local i
	{
		echo "# Written by tests/lab/lab.sh: the lab's simulated VMs."
		echo "defaults: { user: root, port: $port, identity_file: $dir/id_ed25519, platform: iris }"
		echo "hosts:"
		for i in "${!names[@]}"; do
			wait_listening "${addrs[$i]}" "$port" "${names[$i]}" "$dir"
			local platform_line; platform_line=$(grep "^${names[$i]} " "$dir/vms/.list" | tail -n 1 | cut -d' ' -f2)
			local located=''
			[ -z "$esxi" ] || located=", esxi: $esxi, vm_dir: /mnt/vmfs/volumes/datastore1/${names[$i]}"
			echo "  ${names[$i]}: { address: ${addrs[$i]}, platform: $platform_line$located }"
			local key; key=$(cut -d' ' -f1,2 "$(vm_dir "$dir" "${names[$i]}")/host_key.pub")
			if [ "$port" = 22 ]; then echo "${addrs[$i]} $key"; else echo "[${addrs[$i]}]:$port $key"; fi >> "$dir/known_hosts"
		done
		if [ -n "$esxi" ]; then
			wait_listening "$net.99" "$port" "$esxi" "$dir"
			# Its datastore: every VM's directory of this lab, read-only there.
			in_vm "$dir" "$esxi" sh -euc 'mount -t tmpfs datastores /mnt; mkdir -p /mnt/vmfs/volumes/datastore1; mount --bind -o ro "$1" /mnt/vmfs/volumes/datastore1' sh "$dir/vms"
			echo "esxi_hosts:"
			echo "  $esxi: { address: $net.99 }"
			local key; key=$(cut -d' ' -f1,2 "$(vm_dir "$dir" "$esxi")/host_key.pub")
			if [ "$port" = 22 ]; then echo "$net.99 $key"; else echo "[$net.99]:$port $key"; fi >> "$dir/known_hosts"
		fi
		if [ ${#mirrors[@]} -gt 0 ]; then
			echo "mirrors:"
			local m mname members
			for m in "${mirrors[@]}"; do
				mname=${m%%=*} members=${m#*=}
				echo "  $mname: { members: [${members//,/, }] }"
			done
		fi
	} > "$dir/inventory.yml"
	local m mname member k=0
	for m in "${mirrors[@]}"; do
		mname=${m%%=*} k=0
		for member in $(echo "${m#*=}" | tr , ' '); do
			case $k in
			0) set_conf "$dir" "$member" "" mirror="$mname" member_type=Failover member_status=Primary ;;
			1) set_conf "$dir" "$member" "" mirror="$mname" member_type=Failover member_status=Backup ;;
			*) set_conf "$dir" "$member" "" mirror="$mname" "member_type=Disaster Recovery" member_status=Connected ;;
			esac
			k=$((k + 1))
		done
	done
	{
		echo "# Written by tests/lab/lab.sh: a backup of the whole lab."
		echo "name: lab"
		echo "include_primaries: true"
		echo "snapshot: { on: controller, command: 'bash $here/lab.sh snapshot $dir {host}', timeout: 20s }"
		echo "freeze_margin: 10s"
		if [ ${#groups[@]} -gt 0 ]; then
			echo "consistency_groups:"
			local g
			for g in "${groups[@]}"; do echo "  ${g%%=*}: [${g#*=}]"; done
		fi
	} > "$dir/playbook.yml"
}

# Sets KEY=VALUE in the conf of INST (empty: the VM's first instance).
set_conf() { # DIR VM INST KEY=VALUE...
	local dir=$1 vm=$2 inst=$3; shift 3
	if [ -z "$inst" ]; then inst=$(in_vm "$dir" "$vm" sh -c 'ls /etc/irissim | head -n 1'); fi
	local kv key value
	for kv in "$@"; do
		key=${kv%%=*}; value=${kv#*=}
		[[ $key =~ ^[a-z_]+$ ]] || die "bad key: $key"
		in_vm "$dir" "$vm" sh -c 'f=/etc/irissim/$1/conf; mkdir -p "${f%/conf}"; touch "$f"; grep -v "^$2=" "$f" > "$f.tmp" || :; printf "%s=%s\n" "$2" "$3" >> "$f.tmp"; mv "$f.tmp" "$f"' sh "$inst" "$key" "'$value'"
	done
}

cmd_snapshot() { # DIR VM [RUN]
	local dir=$1 vm=$2 run=${3:-} d fault stun=0.05 sub tail snapdir ids=''
	d=$(vm_dir "$dir" "$vm")
	[ -f "$d/address" ] || die "no VM $vm in $dir"
	fault=$(cat "$d/snapshot.fault" 2>/dev/null || true)
	case $fault in
	fail) echo "snapshot of $vm failed (injected fault)" >&2; exit 1 ;;
	hang\ *) sleep "${fault#hang }" ;;
	stun\ *) stun=${fault#stun } ;;
	esac
	local cg t0 t1 n
	cg=$(cgroup_of "$dir" "$vm")
	# Times from bash itself: the snapshot forks nothing it need not while
	# other VMs' freeze windows run (a benchmark measures them).
	t0=$EPOCHREALTIME
	# Like a hypervisor whose client went away: never leave the VM stunned
	# (and never die of a broken pipe before saying so).
	trap '' PIPE
	stunned_cgroup=$cg
	trap 'echo THAWED > "$stunned_cgroup/freezer.state"' EXIT
	trap 'exit 143' TERM INT
	echo FROZEN > "$cg/freezer.state"
	sleep "$stun"
	mkdir -p "$d/snapshots"
	n=$(find "$d/snapshots" -mindepth 1 -maxdepth 1 | wc -l)
	mkdir -p "$d/snapshots/$n"
	cp -a "$d/etc/u/irissim" "$d/snapshots/$n/" 2>/dev/null || true
	if [ -n "$run" ] && [ -f "$d/btrfs.plan" ]; then
		[[ $run =~ ^[A-Za-z0-9-]+$ ]] || die "bad run id: $run"
		while read -r sub tail snapdir; do
			btrfs -q subvolume snapshot -r "$sub" "$snapdir/quiesce@$run@$vm@$tail" >&2 || exit 1
			ids="${ids}quiesce-snapshot-id $snapdir/quiesce@$run@$vm@$tail
"
		done < "$d/btrfs.plan"
	fi
	echo THAWED > "$cg/freezer.state"
	trap - EXIT TERM INT
	t1=$EPOCHREALTIME
	# EPOCHREALTIME is SECONDS.MICROS (the locale's decimal point).
	local u0=$(( ${t0%[.,]*} * 1000000 + 10#${t0#*[.,]} )) u1=$(( ${t1%[.,]*} * 1000000 + 10#${t1#*[.,]} ))
	local us=$(( u1 - u0 )) s0 s1 s2 s3 lines
	export TZ=UTC
	stamp() { printf -v "$1" '%(%Y-%m-%dT%H:%M:%S)T.%03dZ' $(( $2 / 1000000 )) $(( $2 % 1000000 / 1000 )); }
	stamp s0 "$u0"; stamp s1 "$u1"; stamp s2 $(( u1 + 29000 )); stamp s3 $(( u1 + 30000 ))
	# As ESXi 8 logs a snapshot: its start, the stun twice (Checkpoint_Unstun
	# and, 29 ms later, CPT with a larger figure), its completion.
	lines="$s0 In(05) vmx - SnapshotVMX_TakeSnapshot start: 'quiesce-$n', deviceState=0, lazy=0, quiesced=0, forceNative=0, tryNative=1, saveAllocMaps=0
$s1 In(05) vcpu-0 - Checkpoint_Unstun: vm stopped for $us us
$s2 In(05) vcpu-0 - CPT: vm was stunned for $((us + 29000)) us
$s3 In(05) vmx - SnapshotVMXTakeSnapshotComplete: Done with snapshot 'quiesce-$n': $((n + 1))
"
	printf '%s' "$lines" >> "$d/vmware.log"
	printf '%s%s' "$lines" "$ids"
}

stop_vm() { # DIR NAME
	local d; d=$(vm_dir "$1" "$2")
	[ -f "$d/address" ] || return 0
	local cg; cg=$(cgroup_of "$1" "$2")
	if [ -d "$cg" ]; then
		echo THAWED > "$cg/freezer.state" 2>/dev/null || true
		local i pids
		for i in $(seq 1 50); do
			pids=$(cat "$cg/cgroup.procs" 2>/dev/null || true)
			[ -n "$pids" ] || break
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null || true
			sleep 0.05
		done
		rmdir "$cg" 2>/dev/null || true
	fi
	rm -f "$d/sshd.pid"
}

cmd_down() {
	local dir=${1:?usage: lab.sh down DIR}
	[ -d "$dir/vms" ] || return 0
	local d
	for d in "$dir"/vms/*/; do
		[ -d "$d" ] && stop_vm "$dir" "$(basename "$d")"
	done
	return 0
}

cmd=${1:-}; [ $# -gt 0 ] && shift
case $cmd in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
exec) dir=$1 vm=$2; shift 2; in_vm "$dir" "$vm" "$@" ;;
set) set_conf "$@" ;;
snapshot) cmd_snapshot "$@" ;;
snapshot-fault)
	d=$(vm_dir "$1" "$2")
	if [ "$3" = none ]; then rm -f "$d/snapshot.fault"; else echo "$3" > "$d/snapshot.fault"; fi ;;
fault)
	dir=$1 vm=$2 inst=$3; shift 3
	in_vm "$dir" "$vm" sh -c 'f=/etc/irissim/$1/faults; shift; printf "%s\n" "$@" >> "$f"' sh "$inst" "$@" ;;
clear-faults) in_vm "$1" "$2" rm -f "/etc/irissim/$3/faults" ;;
stun) echo FROZEN > "$(cgroup_of "$1" "$2")/freezer.state" ;;
unstun) echo THAWED > "$(cgroup_of "$1" "$2")/freezer.state" ;;
clock)
	[[ $3 =~ ^[+-]?[0-9]+$ ]] || die "clock takes whole seconds, not $3"
	if [ "$3" = 0 ]; then
		in_vm "$1" "$2" rm -f /usr/sbin/date
	else
		in_vm "$1" "$2" sh -c 'printf "#!/bin/sh\n# lab: this VM'"'"'s clock, stepped by %s s\nexec /usr/bin/date -d \"@\$(( \$(/usr/bin/date +%%s) + %s ))\" \"\$@\"\n" "$1" "$1" > /usr/sbin/date && chmod 0755 /usr/sbin/date' sh "$3"
	fi ;;
kill-sshd) kill -KILL "$(vm_pid "$1" "$2")"; rm -f "$(vm_dir "$1" "$2")/sshd.pid" ;;
kill-vm) stop_vm "$1" "$2" ;;
restart-sshd)
	dir=$(cd "$1" && pwd) vm=$2 d=$(vm_dir "$1" "$2")
	stop_vm "$dir" "$vm"
	mapfile -t spec < "$d/spec"
	start_vm "$dir" "$vm" "$(cat "$d/address")" "${spec[0]}" "${spec[1]}" "${spec[2]}" "${spec[3]}" restart
	wait_listening "$(cat "$d/address")" "${spec[0]}" "$vm" "$dir" ;;
max-sessions)
	echo "$3" > "$(vm_dir "$1" "$2")/maxsessions"
	"$0" restart-sshd "$1" "$2" ;;
zone)
	dir=$(cd "$1" && pwd) vm=$2 d=$(vm_dir "$1" "$2")
	[ -e "/usr/share/zoneinfo/$3" ] || die "no time zone $3 (tests/lab/install-deps.sh installs tzdata)"
	in_vm "$dir" "$vm" ln -sfn "/usr/share/zoneinfo/$3" /etc/localtime
	printf '%s\n' "${4:-}" > "$d/lang"
	stop_vm "$dir" "$vm"
	mapfile -t spec < "$d/spec"
	start_vm "$dir" "$vm" "$(cat "$d/address")" "${spec[0]}" "${spec[1]}" "${spec[2]}" "${spec[3]}" restart
	wait_listening "$(cat "$d/address")" "${spec[0]}" "$vm" "$dir" ;;
containerize)
	in_vm "$1" "$2" sh -euc '
		dir=/etc/lab-containers/$1
		mkdir -p "$dir/bin"
		if [ -n "$2" ]; then printf "%s\n" "$2" > "$dir/volume"; else rm -f "$dir/volume"; fi
		for tool in iris ccontrol csession; do mv -f "/usr/sbin/$tool" "$dir/bin/$tool"; done
		cat > /usr/sbin/docker <<"ENGINE"
#!/bin/sh
# The lab'"'"'s container engine: `docker exec [--user U] NAME CMD...` runs CMD
# with the tools of container NAME (and as U), like the real one does.
[ "${1:-}" = exec ] || { echo "lab container engine: only exec" >&2; exit 125; }
shift
user=""
while [ $# -gt 0 ]; do
	case $1 in
	--user | -u) user=$2; shift 2 ;;
	-i | -t | -it) shift ;;
	*) break ;;
	esac
done
name=$1
shift
[ -d "/etc/lab-containers/$name" ] || { echo "Error: No such container: $name" >&2; exit 1; }
PATH=/etc/lab-containers/$name/bin:$PATH
export PATH
printf "%s exec %s %s %s\n" "$(date +%s)" "$name" "${user:-root}" "$*" >> /var/log/lab-container.log
if [ -n "$user" ]; then set -- runuser -u "$user" -- env PATH="$PATH" "$@"; fi
# A volume: the command runs where HOSTDIR is the container'"'"'s own (empty)
# directory and the VM'"'"'s HOSTDIR is at CDIR, as with `docker run -v HOSTDIR:CDIR`.
if [ -f "/etc/lab-containers/$name/volume" ]; then
	IFS=: read -r vh vc < "/etc/lab-containers/$name/volume"
	exec unshare --mount --propagation private -- sh -c '"'"'mount -t tmpfs lab-container /mnt && mkdir -p "$2" && mount --bind "$1" "$2" && mount -t tmpfs lab-container "$1" && shift 2 && exec "$@"'"'"' lab "$vh" "$vc" "$@"
fi
exec "$@"
ENGINE
		chmod 0755 /usr/sbin/docker
		ln -f /usr/sbin/docker /usr/sbin/podman
	' sh "$3" "${4:-}" ;;
owner)
	dir=$1 vm=$2 inst=$3 user=$4
	# The user exists in the VM only (its own /etc).
	in_vm "$dir" "$vm" sh -euc '
		id "$2" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir / --shell /bin/sh "$2"
		printf "owner=%s\n" "$2" >> "/etc/irissim/$1/conf"
		chown -R "$2" "/etc/irissim/$1"
		mkdir -p /var/log/irissim
		touch /var/log/irissim/events.log "/var/log/$1-pre_post.log"
		chmod 0666 /var/log/irissim/events.log
		chown "$2" "/var/log/$1-pre_post.log"
	' sh "$inst" "$user" ;;
certify)
	dir=$(cd "$1" && pwd) vm=$2 d=$(vm_dir "$1" "$2")
	principals=${4:-$(cat "$d/address")}
	cp "$d/host_key.pub" "$dir/certify-$vm.pub"
	ssh-keygen -q -s "$3" -I "$vm" -h -n "$principals" -V -5m:+1d "$dir/certify-$vm.pub"
	in_vm "$dir" "$vm" cp "$dir/certify-$vm-cert.pub" /etc/ssh/ssh_host_ed25519_key-cert.pub
	stop_vm "$dir" "$vm"
	mapfile -t spec < "$d/spec"
	start_vm "$dir" "$vm" "$(cat "$d/address")" "${spec[0]}" "${spec[1]}" "${spec[2]}" "${spec[3]}" restart
	wait_listening "$(cat "$d/address")" "${spec[0]}" "$vm" "$dir" ;;
bastion)
	dir=$(cd "$1" && pwd) vm=$2 d=$(vm_dir "$1" "$2")
	echo DEBUG1 > "$d/loglevel"
	stop_vm "$dir" "$vm"
	mapfile -t spec < "$d/spec"
	start_vm "$dir" "$vm" "$(cat "$d/address")" "${spec[0]}" "${spec[1]}" "${spec[2]}" "${spec[3]}" restart
	wait_listening "$(cat "$d/address")" "${spec[0]}" "$vm" "$dir" ;;
hosts-entry)
	[[ $3 =~ ^[a-z0-9.-]+$ && $4 =~ ^127\.[0-9.]+$ ]] || die "hosts-entry takes a NAME and a loopback ADDRESS"
	in_vm "$1" "$2" sh -c 'echo "$1 $2" >> /etc/hosts' sh "$4" "$3" ;;
events) cat "$(vm_dir "$1" "$2")/log/irissim/events.log" 2>/dev/null || true ;;
tools)
	dir=$(cd "$1" && pwd) vm=$2; shift 2
	case " $* " in *" --snapshot "*) ;; *) set -- --snapshot "bash $here/lab.sh snapshot $dir $vm" "$@" ;; esac
	in_vm "$dir" "$vm" python3 "$here/vmtools-standin" "$@" ;;
signal)
	while read -r pid; do
		if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$4"; then kill "-$3" "$pid" 2>/dev/null || true; fi
	done < "$(cgroup_of "$1" "$2")/cgroup.procs" ;;
ls)
	for d in "$1"/vms/*/; do
		n=$(basename "$d")
		[ -f "$d/sshd.pid" ] && echo "$n $(cat "$d/address") $(cat "$d/sshd.pid")"
	done ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
