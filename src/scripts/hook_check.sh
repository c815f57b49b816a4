# Library: a deployed hook is run only when it is exactly what quiesce
# deployed, and never by its path (which could be swapped after the check):
# `checked_copy PATH SHAS` checks that every directory from / to PATH's is
# owned by root and not group/other-writable, that PATH is a regular file
# (not a symlink) owned by root:root with mode 0700, copies it into a fresh
# root-only directory, hashes the copy, and leaves the copy's path in COPY.
# Returns 0; 97 when the hook is not what quiesce deployed (never run it);
# 98 when it could not be checked (fork, disk: a retry may succeed). WHY says
# which check and what was found.
WORK=''
COPY=''
WHY=''

# One directory: owned by root, not group/other-writable.
safe_component() { # DIR
	meta=$(stat -c '%u %a' -- "$1" 2>/dev/null) || { WHY="cannot read the owner and mode of $1"; return 98; }
	uid=${meta%% *} mode=${meta#* }
	[ "$uid" = 0 ] || { WHY="directory $1 is owned by uid $uid, not root"; return 97; }
	[ $((0$mode & 022)) = 0 ] || { WHY="directory $1 is group- or other-writable (mode $mode)"; return 97; }
	return 0
}

checked_copy() { # PATH SHA[,SHA...]
	COPY='' WHY=''
	dir=${1%/*} name=${1##*/}
	[ -n "$dir" ] || dir=/
	if [ ! -d "$dir" ]; then WHY="directory $dir does not exist"; return 97; fi
	real=$(cd -P -- "$dir" 2>/dev/null && pwd -P) || { WHY="cannot resolve directory $dir"; return 98; }
	d=$real
	while :; do
		safe_component "$d" || return
		[ "$d" = / ] && break
		d=${d%/*}
		[ -n "$d" ] || d=/
	done
	file=${real%/}/$name
	if [ ! -e "$file" ] && [ ! -L "$file" ]; then WHY="$1 does not exist"; return 97; fi
	meta=$(stat -c '%u:%g %a %F' -- "$file" 2>/dev/null) || { WHY="cannot read the owner and mode of $1"; return 98; }
	[ "$meta" = "0:0 700 regular file" ] || { WHY="$1 is not a regular file owned by root:root with mode 0700 (found: $meta)"; return 97; }
	if [ -z "$WORK" ]; then
		WORK=$(mktemp -d 2>/dev/null) || { WORK=''; WHY="cannot create a private directory for a copy of $1"; return 98; }
	fi
	COPY=$WORK/$name
	cp -- "$file" "$COPY" 2>/dev/null || { WHY="cannot copy $1"; return 98; }
	actual=$(sha256sum < "$COPY" 2>/dev/null) || { WHY="cannot checksum $1"; return 98; }
	actual=${actual%% *}
	case ",$2," in *",$actual,"*) return 0 ;; esac
	WHY="$1 does not match what quiesce deployed (sha256 $actual)"
	return 97
}
