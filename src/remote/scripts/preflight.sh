dir=$1 platform=$2
trap 'rm -rf "$WORK"' EXIT
check() { # HOOK SHAS
	if checked_copy "$dir/$1" "$2"; then
		printf 'hook\t%s\tok\n' "$1"
	else
		rc=$?
		printf 'hook\t%s\t%s\t%s\n' "$1" "$rc" "$WHY"
		return 1
	fi
}
ok=0
if check pre-freeze-script "$3"; then
	pre_copy=$COPY
	check post-thaw-script "$4" && ok=1
else
	check post-thaw-script "$4" || :
fi
if [ "$ok" = 1 ]; then
	/bin/sh "$pre_copy" status 2>/dev/null | sed 's/^/status\t/'
fi
if [ "$platform" = iris ]; then
	iris qlist 2>/dev/null | awk -F'^' '{ printf "qlist\t%s\t%s\t%s\t%s\t%s\n", $1, $4, $11, $12, $9 }'
else
	list=$(ccontrol qlist 2>/dev/null | awk -F'^' '{ printf "qlist\t%s\t%s\t\t\t%s\n", $1, $4, $9 }')
	printf '%s\n' "$list"
	printf '%s\n' "$list" | while IFS='	' read -r _ name state _; do
		case $name in '' | [!A-Za-z]* | *[!A-Za-z0-9_-]*) continue ;; esac
		case $state in running*) ;; *) continue ;; esac
		# shellcheck disable=SC2016 # ObjectScript, not shell
		printf 'W "quiesce-type=",$SYSTEM.Mirror.GetMemberType(),!\nW "quiesce-status=",$SYSTEM.Mirror.GetMemberStatus(),!\nhalt\n' |
			csession "$name" -U %SYS 2>/dev/null | tr -d '\r' |
			awk -v n="$name" '/quiesce-type=/ { sub(/.*quiesce-type=/, ""); t = $0 } /quiesce-status=/ { sub(/.*quiesce-status=/, ""); s = $0 } END { printf "role\t%s\t%s\t%s\n", n, t, s }'
	done
fi
