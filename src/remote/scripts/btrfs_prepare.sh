# Args: PLATFORM [INSTANCE...] (none: every running instance)
# Read-only: what a btrfs snapshot of the instances must hold. Prints
# `inst	NAME	DIR` for each running instance in scope (qlist), then its
# configuration file as `cpf	NAME	LINE` lines (the first MiB; tabs
# become spaces), for the controller to read the databases, journal and
# WIJ directories from.
platform=$1
shift
if [ "$platform" = cache ]; then qlist=$(ccontrol qlist 2>/dev/null); else qlist=$(iris qlist 2>/dev/null); fi || {
	echo "cannot list the instances ($platform qlist failed)" >&2
	exit 1
}
printf '%s\n' "$qlist" | while IFS='^' read -r name dir _version status cpf _; do
	case $name in '' | *[!A-Za-z0-9_-]*) continue ;; esac
	case $status in down*) continue ;; esac
	if [ $# -gt 0 ]; then
		case " $* " in *" $name "*) ;; *) continue ;; esac
	fi
	case $dir in /*) ;; *) continue ;; esac
	case $cpf in '' | */* | *[!A-Za-z0-9_.-]*) cpf=iris.cpf ;; esac
	printf 'inst\t%s\t%s\n' "$name" "$(printf '%s' "$dir" | tr '\t' ' ')"
	file=${dir%/}/$cpf
	if [ -f "$file" ]; then
		head -c 1048576 -- "$file" | tr '\t\r' '  ' | sed "s/^/cpf	$name	/"
	else
		printf 'nocpf\t%s\t%s\n' "$name" "$file"
	fi
done
