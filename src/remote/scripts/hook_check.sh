# Library: a deployed hook is run only when it is exactly what quiesce
# deployed, and never by its path (which could be swapped after the check):
# `checked_copy PATH SHAS` checks that every directory from / to PATH's is
# owned by root and not group/other-writable, that PATH is a regular file
# (not a symlink) owned by root:root with mode 0700, copies it into a fresh
# root-only directory, hashes the copy, and leaves the copy's path in COPY.
# Returns 0; 97 when the hook is not what quiesce deployed (never run it);
# 98 when it could not be checked (fork, disk: a retry may succeed). WHY says
# which check and what was found.
# shellcheck disable=SC2034 # COPY and WHY are read by the scripts this library is prepended to
WORK='' COPY='' WHY=''

checked_copy() { # PATH SHA[,SHA...]
	COPY='' WHY=''
	shas=$2 dir=${1%/*} name=${1##*/} given=$1
	[ -n "$dir" ] || dir=/
	if [ ! -d "$dir" ]; then WHY="directory $dir does not exist"; return 97; fi
	here=$PWD
	cd -P -- "$dir" 2> /dev/null || { WHY="cannot resolve directory $dir"; return 98; }
	real=$PWD
	cd -- "$here" 2> /dev/null || cd /
	file=${real%/}/$name
	if [ ! -e "$file" ] && [ ! -L "$file" ]; then WHY="$given does not exist"; return 97; fi
	# Every directory from / to the hook's, then the hook: one stat for all.
	set -- "$file"
	d=$real
	while :; do
		set -- "$d" "$@"
		[ "$d" = / ] && break
		d=${d%/*}
		[ -n "$d" ] || d=/
	done
	meta=$(stat -c '%u %g %a %F' -- "$@" 2> /dev/null) || {
		if stat -c %u / > /dev/null 2>&1; then
			WHY="cannot read the owner and mode of $given"
		else
			WHY="stat -c does not work on the VM (busybox, or no coreutils): install GNU coreutils (8.23 or later)"
		fi
		return 98
	}
	while read -r uid gid mode kind; do
		if [ $# -gt 1 ]; then
			[ "$uid" = 0 ] || { WHY="directory $1 is owned by uid $uid, not root"; return 97; }
			[ $((0$mode & 022)) = 0 ] || { WHY="directory $1 is group- or other-writable (mode $mode)"; return 97; }
		elif [ "$uid:$gid $mode $kind" != "0:0 700 regular file" ]; then
			WHY="$given is not a regular file owned by root:root with mode 0700 (found: $uid:$gid $mode $kind)"
			return 97
		fi
		shift
	done <<- EOF
		$meta
	EOF
	# The copy goes where there is room: /run first (root's own, no other
	# user can plant names there), then the temporary directories; a full
	# /tmp or /run alone must not stop a thaw.
	for base in /run "${TMPDIR:-/tmp}" /dev/shm; do
		if [ -z "$WORK" ]; then
			WORK=$(mktemp -d "$base/quiesce-check.XXXXXX" 2> /dev/null) || { WORK=''; continue; }
		fi
		COPY=$WORK/$name
		cp -- "$file" "$COPY" 2> /dev/null && break
		rm -rf -- "$WORK"
		WORK='' COPY=''
	done
	if [ -z "$COPY" ]; then WHY="cannot copy $given (no room for a private copy in /run, ${TMPDIR:-/tmp} or /dev/shm)"; return 98; fi
	# Asked only after a failure, and in a subshell: a lookup in this
	# shell would pin the path of the next call.
	actual=$(sha256sum < "$COPY" 2> /dev/null) || {
		if (command -v sha256sum) > /dev/null 2>&1; then
			WHY="cannot checksum $given"
		else
			WHY="sha256sum is missing on the VM, so no hook can be checked: install GNU coreutils (8.23 or later)"
		fi
		return 98
	}
	actual=${actual%% *}
	case ",$shas," in *",$actual,"*) return 0 ;; esac
	WHY="$given does not match what quiesce deployed (sha256 $actual)"
	return 97
}
