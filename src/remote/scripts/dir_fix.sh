# Args: DIR FORCE. Makes the hook directory exist, root-owned and writable by
# root alone. Without FORCE=force it refuses (exit 4) to take over a directory
# that others share or own (world-writable, sticky, not root's: /tmp is the
# classic mistake) or one under a parent others can write (its hooks could
# be swapped, and quiesce would never run them).
set -eu
dir=$1 force=$2
if [ -L "$dir" ] || { [ -e "$dir" ] && [ ! -d "$dir" ]; }; then
	echo "$dir is not a directory; fix it by hand" >&2
	exit 3
fi
refuse() {
	echo "refusing to change $dir: $1; use a directory of its own for the hooks (hook_dir), or --force" >&2
	exit 4
}
if [ "$force" != force ]; then
	if [ -d "$dir" ]; then
		meta=$(stat -c '%u %a' -- "$dir")
		uid=${meta%% *} mode=${meta#* }
		[ $((0$mode & 01002)) = 0 ] || refuse "it is shared with every user (mode $mode: world-writable or sticky)"
		[ "$uid" = 0 ] || refuse "it belongs to uid $uid, not root"
	fi
	parent=${dir%/*}
	while [ -n "$parent" ]; do
		if [ -d "$parent" ]; then
			meta=$(stat -c '%u %a' -- "$parent")
			uid=${meta%% *} mode=${meta#* }
			{ [ "$uid" = 0 ] && [ $((0$mode & 022)) = 0 ]; } || refuse "its parent $parent is not root's alone (uid $uid, mode $mode), so its hooks could be swapped"
		fi
		parent=${parent%/*}
	done
fi
# shellcheck disable=SC2174 # new parents get the umask's mode; the checks above guard them
mkdir -p -m 0755 "$dir"
chown root:root "$dir"
chmod go-w "$dir"
