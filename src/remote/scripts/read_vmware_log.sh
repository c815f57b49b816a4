# Args: VM_DIR FILE. Prints the VM's FILE (vmware.log, vmware-1.log, ...) from
# its datastore directory; read-only. Exit 3: there is no such file.
dir=$1 file=$2
case $file in vmware.log | vmware-[0-9].log | vmware-[0-9][0-9].log) ;; *) echo "not a vmware.log name: $file" >&2; exit 2 ;; esac
if [ ! -f "$dir/$file" ]; then
	echo "no $file in $dir" >&2
	exit 3
fi
cat -- "$dir/$file"
