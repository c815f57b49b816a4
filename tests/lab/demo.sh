#!/usr/bin/env bash
# The main job end to end on a local lab: start simulated VMs, deploy the
# hooks, audit them, stop the lab. Pass -i INVENTORY (and other quiesce flags)
# to run deploy and audit against a real fleet instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
quiesce=target/release/quiesce
if [ $# -gt 0 ]; then
	"$quiesce" "$@" deploy
	exec "$quiesce" "$@" audit
fi
bash tests/lab/install-deps.sh
lab=$(mktemp -d /tmp/quiesce-demo-XXXXXX)
trap 'bash tests/lab/lab.sh down "$lab"; rm -rf "$lab"' EXIT
echo "== starting the lab in $lab"
bash tests/lab/lab.sh up "$lab" --net 127.0.99 \
	db-a1=iris:IRIS db-a2=iris:IRIS db-dr=iris:IRIS,REPORTS app1=cache:CACHE solo=iris:IRIS
flags=(-i "$lab/inventory.yml" --known-hosts "$lab/known_hosts")
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
echo "== a freeze and thaw through the deployed hooks on db-dr"
bash tests/lab/lab.sh exec "$lab" db-dr sh -c '/usr/sbin/pre-freeze-script freeze && /usr/sbin/post-thaw-script thaw && cat /var/log/snapshot.log'
