# Args: HOOK_DIR PLATFORM PRE_SHAS POST_SHAS [PRE_NAME POST_NAME]. Checks
# both hooks (never runs a changed one; one file for qemu-ga's, named twice), then asks the checked hook what preflight needs: each
# instance's state (`status`) and its qlist fields and mirror role (`facts`),
# through the hook so that its container and owner settings apply.
dir=$1 pre_name=${5:-pre-freeze-script} post_name=${6:-post-thaw-script}
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
if check "$pre_name" "$3"; then
	pre_copy=$COPY
	check "$post_name" "$4" && ok=1
else
	check "$post_name" "$4" || :
fi
if [ "$ok" = 1 ]; then
	/bin/sh "$pre_copy" status 2>/dev/null | sed 's/^/status\t/'
	# The instances as the hook reaches them (its container, its owner).
	/bin/sh "$pre_copy" facts 2>/dev/null
fi
