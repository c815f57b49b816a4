# Args: DIR FORCE FRAMEWORK, then PATH SHA256 SIZE for each hook (PATH is
# in DIR; FRAMEWORK `framework=qemu-ga` has the probe read the agent, or -);
# standard input: the hooks' contents, one after another in that order.
# A whole deploy of one host in one round trip, after the functions probe
# (probe.sh), dir_fix (dir_fix.sh) and write_hook (write_hook.sh):
#   1. probes DIR and the hooks, and prints it after `section	before`;
#   2. refuses (exit 4, whatever FORCE) a DIR under a parent that is not
#      root's alone, and fixes DIR if it is not a directory of root's that
#      only root writes;
#   3. leaves each hook that is exactly right (a regular file, root:root,
#      0700, that sha256) and writes each other one, except one in the way
#      (a symlink, a directory…) without FORCE=force, which it refuses;
#   4. if it changed anything, probes again, after `section	after`.
# Each outcome is a line: `did	dir-fixed`, `did	kept|wrote|refused	PATH`.
# Before a step that can fail it prints `step	NAME`; a failing step ends
# the script with its status (its reason on stderr). The steps are called
# as plain commands, never `step || exit`: a function tested by || or if
# runs with `set -e` switched off, and a failed chown would go on to mv.
set -u
dir=$1 force=$2 framework=$3
shift 3
[ "$framework" != - ] || framework=''

hooks='' paths=$dir
while [ $# -ge 3 ]; do
	hooks="$hooks $1:$2:$3" paths="$paths $1"
	shift 3
done
nl='
'
# shellcheck disable=SC2086 # word splitting is wanted: the paths have no blanks
before=$(probe $framework $paths)
printf 'section\tbefore\n%s\n' "$before"
facts="$nl$before$nl"
changed=''

# A VM without GNU coreutils (busybox alone, or a tool missing) gets nothing:
# a hook written there could not be checked before it runs.
case $facts in
*"${nl}needs	"*)
	printf 'step\tcheck the tools on the VM\n'
	need=${facts#*"${nl}needs	"}
	need=${need%%"$nl"*}
	echo "refusing to deploy: ${need%%	*} is ${need#*	} on the VM, and quiesce needs GNU coreutils 8.23 or later (stat -c, sha256sum, mktemp, mv -T, timeout); install coreutils" >&2
	exit 4
	;;
esac

# The hook directory's parents are root's alone, or no hook there is safe:
# whoever can write one can swap the directory (and preflight would then
# refuse to run the hooks). --force does not change that. The probe's
# `parent` lines say who owns each.
while IFS='	' read -r kind parent uid pmode; do
	[ "$kind" = parent ] || continue
	pmode=$(printf '%04d' "$pmode")
	if [ "$uid" != 0 ] || [ $((0$pmode & 022)) != 0 ]; then
		printf 'step\tcheck the hook directory'"'"'s parents\n'
		echo "refusing to deploy into $dir: its parent $parent is not root's alone (uid $uid, mode $pmode), so whoever owns or can write it could swap the hooks; make it root's and writable by root alone (chown root: $parent; chmod go-w $parent), --force does not override this" >&2
		exit 4
	fi
done <<EOF
$before
EOF

mode=''
case $facts in
*"${nl}stat	$dir	directory	root	root	"*)
	rest=${facts#*"${nl}stat	$dir	directory	root	root	"}
	mode=${rest%%	*}
	;;
esac
case $mode in '' | *[!0-7]*) mode=7777 ;; esac
if [ $((0$mode & 022)) != 0 ]; then
	printf 'step\tfix hook directory\n'
	dir_fix "$dir" "$force"
	ended=$?
	[ "$ended" = 0 ] || exit "$ended"
	printf 'did\tdir-fixed\n'
	changed=1
fi

# Bytes of standard input that belong to hooks left as they are: skipped
# only when a later hook is written.
pending=0
for hook in $hooks; do
	path=${hook%%:*} rest=${hook#*:}
	sha=${rest%%:*} size=${rest#*:}
	case $facts in
	*"${nl}stat	$path	regular file	root	root	700	"*"${nl}$sha  $path$nl"*)
		printf 'did\tkept\t%s\n' "$path"
		pending=$((pending + size))
		continue
		;;
	esac
	if [ "$force" != force ] && { [ -L "$path" ] || { [ -e "$path" ] && [ ! -f "$path" ]; }; }; then
		printf 'did\trefused\t%s\n' "$path"
		pending=$((pending + size))
		continue
	fi
	printf 'step\twrite %s\n' "${path##*/}"
	if [ "$pending" -gt 0 ]; then
		dd bs="$pending" count=1 iflag=fullblock status=none of=/dev/null || exit
		pending=0
	fi
	write_hook "$dir" "${path##*/}" "$sha" "$size" "$force"
	ended=$?
	[ "$ended" = 0 ] || exit "$ended"
	printf 'did\twrote\t%s\n' "$path"
	changed=1
done

if [ -n "$changed" ]; then
	printf 'section\tafter\n'
	# shellcheck disable=SC2086 # word splitting is wanted: the paths have no blanks
	probe $framework $paths
fi
