# Args: DIR FORCE. Makes the hook directory exist, root-owned and writable by
# root alone. Without FORCE=force it refuses (exit 4) to take over a directory
# that others share or own (world-writable, sticky, not root's: /tmp is the
# classic mistake). Its parents are checked before (deploy.sh), with or
# without FORCE.
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
fi
# shellcheck disable=SC2174 # new parents get the umask's mode; the checks above guard them
mkdir -p -m 0755 "$dir"
chown root:root "$dir"
chmod go-w "$dir"
