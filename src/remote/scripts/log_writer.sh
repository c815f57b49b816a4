# Who root may open files in a log directory as (the hooks' writes, `logs`'
# reads). Root never opens a path in a directory another user can write: a
# link planted there would point root at any file. So `log_writer DIR` sets
# LOG_AS to
#   root     DIR and every parent are real directories (no symlink), root's
#            and writable by root alone (a sticky parent such as /tmp is
#            fine: nobody else can rename what is in it);
#   UID:GID  the same, except that some of them are owned by one other user
#            (iris_user's log directory, a container's volume): its files are
#            opened as that user, who gains nothing (they could write them
#            anyway), with that directory's group (never gid 0) and no
#            supplementary groups;
#   none     anything else (a symlink, shared with a group or everyone, two
#            users, missing, no setpriv): nothing is opened there, and LOG_WHY
#            says why and what to do.
# POSIX sh, one process (stat) whatever the depth.
# shellcheck disable=SC2034 # LOG_AS and LOG_WHY are for the script this is sent with
log_writer() { # DIR
	LOG_AS=none LOG_WHY=''
	case $1 in
	/*) ;;
	*) LOG_WHY="$1 is not an absolute path"; return 0 ;;
	esac
	case /$1/ in
	*/./* | */../*) LOG_WHY="$1 has a . or .. component: give the real path"; return 0 ;;
	esac
	lw_rest=${1#/} lw_list=/ lw_path=''
	while [ -n "$lw_rest" ]; do
		lw_name=${lw_rest%%/*}
		case $lw_rest in */*) lw_rest=${lw_rest#*/} ;; *) lw_rest='' ;; esac
		[ -z "$lw_name" ] && continue
		lw_path=$lw_path/$lw_name
		lw_list="$lw_list $lw_path"
	done
	# shellcheck disable=SC2086 # split on purpose: the components have no blanks (checked at load)
	lw_stats=$(stat -c '%u %g %a %F' -- $lw_list 2>/dev/null) || {
		LOG_WHY="$1 does not exist (or a part of it cannot be read): create it"
		return 0
	}
	lw_user=0 lw_group=0 lw_left=$lw_list
	while read -r lw_uid lw_gid lw_mode lw_type; do
		lw_at=${lw_left%% *}
		case $lw_left in *' '*) lw_left=${lw_left#* } ;; *) lw_left='' ;; esac
		if [ "$lw_type" != directory ]; then
			LOG_WHY="$lw_at is a $lw_type, not a directory: give log_dir as a path of real directories"
			return 0
		fi
		lw_bits=$((0$lw_mode))
		if [ $((lw_bits & 022)) != 0 ] && { [ -z "$lw_left" ] || [ $((lw_bits & 01000)) = 0 ]; }; then
			LOG_WHY="$lw_at is writable by group or others (mode $(printf '%04d' "$lw_mode")): another user could plant a link there; make it writable by its owner alone (chmod go-w $lw_at)"
			return 0
		fi
		if [ "$lw_uid" != 0 ]; then
			if [ "$lw_user" != 0 ] && [ "$lw_user" != "$lw_uid" ]; then
				LOG_WHY="$lw_at belongs to uid $lw_uid and a directory above it to uid $lw_user: only root and one other user may own log_dir and its parents"
				return 0
			fi
			lw_user=$lw_uid
			# Never the root group: a directory of the user's with group 0
			# would otherwise hand that user root's group.
			if [ "$lw_gid" = 0 ]; then lw_group=65534; else lw_group=$lw_gid; fi
		fi
	done <<EOF
$lw_stats
EOF
	if [ "$lw_user" = 0 ]; then
		LOG_AS=root
	elif command -v setpriv > /dev/null 2>&1; then
		LOG_AS=$lw_user:$lw_group
	else
		LOG_WHY="$1 belongs to uid $lw_user, and setpriv (util-linux) is missing to open its files as that user: install util-linux"
	fi
}

# Runs COMMAND as LOG_AS; fails for none.
# shellcheck disable=SC2317 # not every script this is sent with calls it
log_as() { # COMMAND ARGS...
	case $LOG_AS in
	root) "$@" ;;
	none) return 1 ;;
	*) setpriv --reuid="${LOG_AS%:*}" --regid="${LOG_AS#*:}" --clear-groups -- "$@" ;;
	esac
}
