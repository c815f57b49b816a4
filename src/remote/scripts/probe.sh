# Args: PATH... (quiesce's own paths: no blanks, checked at load). Prints
# `missing PATH` for each path that is not there, then one `stat` line for
# all that are: `stat PATH TYPE OWNER GROUP MODE SIZE` (tab-separated), one
# `sha256sum` line for each regular file (`HASH  PATH`) and `link PATH
# TARGET` for each symlink. Two processes whatever the number of paths (the
# VM's CPU is what a fleet-wide audit costs). Never follows a symlink: stat
# without -L, and a checksum only of regular files.
found='' files=''
for p in "$@"; do
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
