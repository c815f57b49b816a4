#!/usr/bin/env bash
# The main job end to end on a local lab: start simulated VMs (two mirrors,
# a consistency group, a standalone VM), deploy the hooks, audit them, plan and
# run a coordinated backup, stop the lab. Pass -i INVENTORY -p PLAYBOOK (and
# other quiesce flags) to run deploy, audit and backup on a real fleet instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
quiesce=target/release/quiesce
if [ $# -gt 0 ]; then
	flags=() playbook=()
	while [ $# -gt 0 ]; do
		case $1 in -p | --playbook) playbook=(-p "$2"); shift 2 ;; *) flags+=("$1"); shift ;; esac
	done
	"$quiesce" "${flags[@]}" deploy
	"$quiesce" "${flags[@]}" audit
	[ ${#playbook[@]} -gt 0 ] || exit 0
	exec "$quiesce" "${flags[@]}" backup "${playbook[@]}"
fi
bash tests/lab/install-deps.sh
lab=$(mktemp -d /tmp/quiesce-demo-XXXXXX)
trap 'bash tests/lab/lab.sh down "$lab"; rm -rf "$lab"' EXIT
echo "== starting the lab in $lab"
bash tests/lab/lab.sh up "$lab" --net 127.0.99 \
	--mirror PRODMIR=db-a1,db-a2,db-dr --mirror HRMIR=hr-1,hr-2,hr-dr --group billing=app1,app2,bill-db \
	db-a1=iris:IRIS db-a2=iris:IRIS db-dr=iris:IRIS,REPORTS hr-1=iris:HR hr-2=iris:HR hr-dr=iris:HR \
	app1=cache:CACHE app2=cache:CACHE bill-db=iris:BILLING solo=iris:IRIS
flags=(-i "$lab/inventory.yml" --known-hosts "$lab/known_hosts" --runs-dir "$lab/runs")
echo "== quiesce hosts"
"$quiesce" "${flags[@]}" hosts
echo "== quiesce deploy"
"$quiesce" "${flags[@]}" deploy
echo "== quiesce deploy (again: nothing to change)"
"$quiesce" "${flags[@]}" deploy
echo "== quiesce audit"
"$quiesce" "${flags[@]}" audit
echo "== tampering with db-a2's pre-freeze-script, then auditing"
bash tests/lab/lab.sh exec "$lab" db-a2 chmod 0755 /usr/sbin/pre-freeze-script
"$quiesce" "${flags[@]}" audit || echo "(audit exit code $?: non-compliant, as expected)"
echo "== quiesce audit --fix"
"$quiesce" "${flags[@]}" audit --fix
echo "== quiesce plan (roles read from the instances)"
"$quiesce" "${flags[@]}" plan -p "$lab/playbook.yml"
echo "== quiesce backup"
"$quiesce" "${flags[@]}" backup -p "$lab/playbook.yml"
run=$(find "$lab/runs" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | tail -n 1)
echo "== quiesce report $run (from the logs the backup collected)"
"$quiesce" "${flags[@]}" report "$run"
cp "$lab/runs/$run/report.html" /tmp/quiesce-demo-report.html
echo "(the HTML timeline: /tmp/quiesce-demo-report.html)"
echo "== quiesce stun (the VMs' vmware.log, against their mirrors' QoS timeout)"
"$quiesce" "${flags[@]}" stun "$lab"/vms/*/vmware.log
