# Args: VM_DIR FILE. Prints the VM's FILE (vmware.log, vmware-1.log, ...) from
# its datastore directory, its last 1.8 MiB at most (the newest lines: the
# controller takes no more than 2 MiB from one command); read-only. Exit 3:
# there is no such file.
dir=$1 file=$2
case $file in vmware.log | vmware-[0-9].log | vmware-[0-9][0-9].log) ;; *) echo "not a vmware.log name: $file" >&2; exit 2 ;; esac
if [ ! -f "$dir/$file" ]; then
	echo "no $file in $dir" >&2
	exit 3
fi
tail -c 1887436 -- "$dir/$file"
