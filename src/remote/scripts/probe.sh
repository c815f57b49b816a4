# Args: [framework=qemu-ga] [log_dir=DIR] PATH... (quiesce's own paths: no blanks, checked at load). Prints
# `missing PATH` for each path that is not there, then one `stat` line for
# all that are: `stat PATH TYPE OWNER GROUP MODE SIZE` (tab-separated), one
# `sha256sum` line for each regular file (`HASH  PATH`) and `link PATH
# TARGET` for each symlink. A few processes whatever the number of paths
# (the VM's CPU is what a fleet-wide audit costs). Never follows a symlink: stat
# without -L, and a checksum only of regular files.
# An argument `log_dir=DIR` is not a path to stat: it prints
# `logdir	AS	WHY`, who the hooks write DIR's files as (log_writer.sh, sent
# before this), and `parent	DIR	UID	MODE` for each directory above the first
# PATH (the hook directory), which must all be root's alone.
# An argument `framework=qemu-ga` prints what qemu-guest-agent will run at
# a freeze: `qga	conf	VALUE` (its fsfreeze-hook setting as the agent
# itself reads its configuration: qemu-ga -D), `qga	proc	PID	ARG...` for
# each agent running in this mount namespace (its arguments, tab-separated),
# after `qga	installed`, or `qga	missing` when the agent is not installed.
qga_facts() {
	if ! agent=$(command -v qemu-ga); then
		printf 'qga\tmissing\n'
		return 0
	fi
	printf 'qga\tinstalled\n'
	"$agent" -D 2>/dev/null | sed -n 's/^fsfreeze-hook=/qga\tconf\t/p'
	ns=$(readlink /proc/self/ns/mnt)
	set +f
	for d in /proc/[0-9]*; do
		comm='' pid=${d#/proc/}
		{ read -r comm < "$d/comm"; } 2>/dev/null || continue
		[ "$comm" = qemu-ga ] || continue
		[ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
		args=$(tr '\t\n\000' '  \t' < "/proc/$pid/cmdline" 2>/dev/null) || continue
		printf 'qga\tproc\t%s\t%s\n' "$pid" "$args"
	done
}
found='' files='' first=''
for p in "$@"; do
	case $p in
	framework=qemu-ga)
		qga_facts
		continue
		;;
	log_dir=*)
		log_writer "${p#log_dir=}"
		printf 'logdir\t%s\t%s\n' "$LOG_AS" "$LOG_WHY"
		continue
		;;
	esac
	if [ -z "$first" ]; then
		first=$p parent=${p%/*} parents=''
		while [ -n "$parent" ]; do
			parents="$parents $parent"
			parent=${parent%/*}
		done
		# One process for all of them; one that is not there prints nothing.
		# shellcheck disable=SC2086 # word splitting is wanted: the paths have no blanks
		[ -z "$parents" ] || stat -L -c 'parent	%n	%u	%a' -- $parents 2>/dev/null || :
	fi
	if [ ! -e "$p" ] && [ ! -L "$p" ]; then printf 'missing\t%s\n' "$p"; continue; fi
	found="$found $p"
	if [ -L "$p" ]; then
		target=$(readlink -- "$p")
		printf 'link\t%s\t%s\n' "$p" "$(printf '%s' "$target" | tr '\t\n' '  ')"
	elif [ -f "$p" ]; then
		files="$files $p"
	fi
done
# shellcheck disable=SC2086 # word splitting is wanted: the paths have no blanks
[ -z "$found" ] || stat -c 'stat	%n	%F	%U	%G	%a	%s' -- $found || printf 'error\t-\tstat failed\n'
# shellcheck disable=SC2086 # word splitting is wanted: the paths have no blanks
[ -z "$files" ] || sha256sum -- $files || true
# What quiesce's scripts need on the VM (GNU coreutils, util-linux): a tool
# missing is `needs	TOOL	missing`, one that is busybox's `needs	TOOL	busybox`.
# Builtins only, but for a readlink when a tool is a symlink.
for tool in stat sha256sum mktemp mv dd timeout; do
	if ! where=$(command -v "$tool"); then
		printf 'needs\t%s\tmissing\n' "$tool"
	elif [ -L "$where" ]; then
		case $(readlink -- "$where") in *busybox*) printf 'needs\t%s\tbusybox\n' "$tool" ;; esac
	fi
done
# VMware Tools' own say in whether and how long the hooks run: tools.conf
# [vmbackup] execScripts and timeout as `tools	KEY	LINE	VALUE`, and each other
# script it runs as `tools	script	PATH` (the files of backupScripts.d).
# Shell builtins only: no process more.
conf=/etc/vmware-tools/tools.conf
tab='	'
if [ -f "$conf" ] && [ -r "$conf" ]; then
	section='' n=0
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		while :; do case $line in ' '* | "$tab"*) line=${line#?} ;; *) break ;; esac; done
		case $line in
		'#'* | '') ;;
		'['*']'*) section=${line#?}; section=${section%%]*} ;;
		*=*)
			[ "$section" = vmbackup ] || continue
			key=${line%%=*} value=${line#*=}
			while :; do case $key in *' ' | *"$tab") key=${key%?} ;; *) break ;; esac; done
			while :; do case $value in ' '* | "$tab"*) value=${value#?} ;; *) break ;; esac; done
			while :; do case $value in *' ' | *"$tab") value=${value%?} ;; *) break ;; esac; done
			case $key in execScripts | timeout) printf 'tools\t%s\t%s\t%s\n' "$key" "$n" "$value" ;; esac
			;;
		esac
	done < "$conf"
fi
if [ -d /etc/vmware-tools/backupScripts.d ]; then
	set +f
	for f in /etc/vmware-tools/backupScripts.d/*; do
		case $f in *"$tab"* | *'
'*) continue ;; esac
		[ -f "$f" ] && printf 'tools\tscript\t%s\n' "$f"
	done
fi
exit 0
