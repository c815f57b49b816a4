#!/usr/bin/env bash
# A whole fleet in one run: for each size (default 100 300 1000), a lab of
# that many real sshd VMs (200 a /24 from 127.0.190; every tenth trio a
# mirror), then `deploy`, `audit`, `plan` and a `backup` whose snapshot does
# nothing, each timed (wall) with the controller's peak RSS (GNU time).
# Run by hand, as root: about 0.3 s of start-up and 7 MB of memory per VM.
#   bash benches/fleet_scale.sh [SIZE...]
# Figures: docs/scale.md.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 300 1000)
bash tests/lab/install-deps.sh
cargo build --release --quiet
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
forks=${FORKS:-20}
# shellcheck source=benches/lab_fleet.sh
. benches/lab_fleet.sh
printf '%6s  %-8s  %8s  %8s  %9s  %s\n' hosts command wall_s rss_mb s/100host result
for n in "${sizes[@]}"; do
	setup=$(mktemp -d /tmp/quiesce-scale-XXXXXX)
	# shellcheck disable=SC2317 # called by the trap
	cleanup() {
		fleet_down
		rm -rf "$setup"
	}
	trap cleanup EXIT
	started=$(date +%s)
	fleet_up "$setup" 's%04d' "$n" 30
	echo "# $n VMs started in $(($(date +%s) - started)) s; memory used: $(free -m | awk '/Mem:/ {print $3}') MB" >&2
	printf 'name: scale\ninclude_primaries: true\nsnapshot: { on: controller, command: "true", timeout: 20s }\nfreeze_margin: 10s\n' > "$setup/playbook.yml"
	q=(./target/release/quiesce -i "$setup/inventory.yml" --known-hosts "$setup/known_hosts"
		--global-known-hosts none --ssh-config none --no-agent --runs-dir "$setup/runs" -f "$forks")
	for step in deploy audit plan backup; do
		args=("$step")
		case $step in plan | backup) args+=(-p "$setup/playbook.yml") ;; esac
		set +e
		/usr/bin/time -f '%e %M' -o "$setup/time" "${q[@]}" "${args[@]}" > "$setup/out" 2> "$setup/err"
		code=$?
		set -e
		read -r wall rss < "$setup/time"
		summary=$(grep -E '^(deploy|audit): |hosts: |^mirror |lanes' "$setup/out" | tail -n 1 || true)
		awk -v n="$n" -v step="$step" -v wall="$wall" -v rss="$rss" -v code="$code" -v summary="$summary" \
			'BEGIN { printf "%6s  %-8s  %8.2f  %8.1f  %9.2f  exit %s: %s\n", n, step, wall, rss / 1024, wall * 100 / n, code, summary }'
	done
	cleanup
	trap - EXIT
done
