#!/usr/bin/env bash
# quiesce's vSphere provider against the one-process-per-snapshot way a
# site's `snapshot.command: govc snapshot.create …` works, on one fleet:
# for each size (default 100 1000), that many real sshd VMs (every 30th
# starts a mirror of three, all primaries included) and a vcsim
# (tests/lab/vcsim) holding a VM for each, then a full `backup` with each
# peer. Per run: wall time, the controller's CPU (its children's included:
# the govc peer's processes), vcsim's CPU (the provider's own cost), SOAP
# requests per snapshot (counted by the stand-in) and the controller's peak
# RSS. Run by hand, as root; figures in docs/benchmarks.md.
#   bash benches/vsphere_fleet.sh [SIZE...]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
bash tests/lab/install-deps.sh
cargo build --release --quiet
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
forks=${FORKS:-20}
bin=$(mktemp -d /tmp/quiesce-vsbench-bin-XXXXXX)
bash tests/lab/vcsim/build.sh "$bin/vcsim-lab"
MAIN_GO=benches/govc_standin/main.go bash tests/lab/vcsim/build.sh "$bin/govc-standin"
# shellcheck source=benches/lab_fleet.sh
. benches/lab_fleet.sh
cpu_of() { # PID: user + system seconds so far
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}
printf '%6s  %-9s  %7s  %9s  %9s  %8s  %7s  %s\n' hosts peer wall_s ctl_cpu_s vcsim_cpu req/snap rss_mb result
for n in "${sizes[@]}"; do
	setup=$(mktemp -d /tmp/quiesce-vsbench-XXXXXX)
	coproc VCSIM { exec "$bin/vcsim-lab" -listen 127.0.189.1:0 -vms "$n" 2>/dev/null; }
	read -r url sha _ <&"${VCSIM[0]}"
	# shellcheck disable=SC2317 # called by the trap
	cleanup() {
		fleet_down
		kill "$VCSIM_PID" 2>/dev/null || true
		rm -rf "$setup"
	}
	trap cleanup EXIT
	fleet_up "$setup" 'v%04d' "$n" 30
	# Each lab VM is the vcsim VM of its place: v0001 is DC0_H0_VM0.
	awk '/^  v[0-9]+: \{/ { sub(/ *\}$/, ", vm: DC0_H0_VM" (substr($1, 2, 4) - 1) " }") } { print }' \
		"$setup/inventory.yml" > "$setup/inventory.tmp" && mv "$setup/inventory.tmp" "$setup/inventory.yml"
	plain=${url/user:pass@/}
	printf 'name: vs\ninclude_primaries: true\nsnapshot:\n  provider: vsphere\n  vsphere: { url: "%s", thumbprint: "%s" }\n  timeout: 60s\nfreeze_margin: 10s\n' \
		"$plain" "$sha" > "$setup/vsphere.yml"
	printf 'name: govc\ninclude_primaries: true\nsnapshot: { on: controller, command: "%s %s {vm} quiesce-{run_id}", timeout: 60s }\nfreeze_margin: 10s\n' \
		"$bin/govc-standin" "$url" > "$setup/govc.yml"
	q=(./target/release/quiesce -i "$setup/inventory.yml" --known-hosts "$setup/known_hosts"
		--global-known-hosts none --ssh-config none --no-agent --runs-dir "$setup/runs" -f "$forks")
	"${q[@]}" deploy --quiet > /dev/null
	for peer in vsphere govc; do
		echo requests >&"${VCSIM[1]}"
		read -r _ before <&"${VCSIM[0]}"
		vcpu=$(cpu_of "$VCSIM_PID")
		set +e
		QUIESCE_VSPHERE_USERNAME=user QUIESCE_VSPHERE_PASSWORD=pass \
			/usr/bin/time -f '%e %M %U %S' -o "$setup/time" "${q[@]}" backup -p "$setup/$peer.yml" > "$setup/out" 2> "$setup/err"
		code=$?
		set -e
		echo requests >&"${VCSIM[1]}"
		read -r _ after <&"${VCSIM[0]}"
		vcpu=$(awk -v a="$vcpu" -v b="$(cpu_of "$VCSIM_PID")" 'BEGIN { printf "%.2f", b - a }')
		read -r wall rss user sys < "$setup/time"
		summary=$(grep -E '^backup ' "$setup/out" | tail -n 1 | sed 's/.*hosts: //' || true)
		awk -v n="$n" -v peer="$peer" -v wall="$wall" -v rss="$rss" -v cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" \
			-v vcpu="$vcpu" -v req="$((after - before))" -v code="$code" -v summary="$summary" \
			'BEGIN { printf "%6s  %-9s  %7.2f  %9.2f  %9.2f  %8.1f  %7.1f  exit %s: %s\n", n, peer, wall, cpu, vcpu, req / n, rss / 1024, code, summary }'
	done
	cleanup
	trap - EXIT
done
rm -rf "$bin"
