#!/usr/bin/env bash
# Deploy where every hook differs: this checkout's quiesce against the one of
# another commit (BASE; default: the last before deploy became one script per
# host), alternating over REPS repetitions on an N-VM lab of real sshd VMs.
# Every run rewrites all 2N hooks: the two inventories it alternates between
# differ in a value the hooks carry (freeze_timeout).
#   bash benches/deploy_rewrite.sh [N=100] [REPS=5]
#   LATENCY_MS=25 bash benches/deploy_rewrite.sh ...   over 25 ms each way
#   FORKS=20 ...                                         hosts at once (default: quiesce's)
# Prints each run (wall time, commands each VM's sshd started per host, the
# summary line), then the medians and their ratio. Figures: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
reps=${2:-5}
bash tests/lab/install-deps.sh
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
cargo build --release --quiet
if [ -z "${BASE:-}" ]; then
	added=$(git log --diff-filter=A --format=%H -- src/remote/scripts/deploy.sh | tail -n 1)
	BASE=$(git rev-parse "$added~1")
fi
base_bin=/var/tmp/quiesce-bench-base/$BASE/quiesce
if [ ! -x "$base_bin" ]; then
	tree=$(mktemp -d /tmp/quiesce-base-XXXXXX)
	git worktree add --detach -q "$tree" "$BASE"
	CARGO_TARGET_DIR="$tree/target" cargo build --release --quiet --manifest-path "$tree/Cargo.toml"
	mkdir -p "${base_bin%/*}"
	cp "$tree/target/release/quiesce" "$base_bin"
	git worktree remove --force "$tree"
fi

setup=$(mktemp -d /tmp/quiesce-rewrite-XXXXXX)
# shellcheck source=benches/lab_fleet.sh
. benches/lab_fleet.sh
cleanup() {
	fleet_down
	rm -rf "$setup"
}
trap cleanup EXIT
fleet_up "$setup" 'w%03d' "$n"
[ -z "${LATENCY_MS:-}" ] || fleet_relays "$setup" "$LATENCY_MS"
sed 's/platform: iris }/platform: iris, freeze_timeout: 5m }/' "$setup/inventory.yml" > "$setup/a.yml"
sed 's/platform: iris }/platform: iris, freeze_timeout: 6m }/' "$setup/inventory.yml" > "$setup/b.yml"
forks=()
[ -z "${FORKS:-}" ] || forks=(-f "$FORKS")
commands() {
	local lab
	for lab in "${labs[@]}"; do cat "$lab"/vms/*/sshd.log; done | grep -c 'Starting session: command' || true
}
deploy() { # BINARY INVENTORY LABEL
	local before after wall
	before=$(commands)
	/usr/bin/time -f %e -o "$setup/time" "$1" -i "$2" --known-hosts "$setup/known_hosts" \
		--global-known-hosts none --ssh-config none --no-agent -q "${forks[@]}" deploy > "$setup/out" 2>&1 || true
	after=$(commands)
	wall=$(cat "$setup/time")
	printf '%-6s  %6s s  %4s commands/host  %s\n' "$3" "$wall" \
		"$(awk -v d=$((after - before)) -v n="$n" 'BEGIN { printf "%.1f", d / n }')" "$(tail -n 1 "$setup/out")"
	echo "$3 $wall" >> "$setup/walls"
}
deploy ./target/release/quiesce "$setup/b.yml" warmup > /dev/null
for ((r = 1; r <= reps; r++)); do
	deploy "$base_bin" "$setup/a.yml" base
	deploy ./target/release/quiesce "$setup/b.yml" this
done
python3 - "$setup/walls" "$BASE" <<'PY'
import statistics, sys
walls = {}
for line in open(sys.argv[1]):
    label, wall = line.split()
    walls.setdefault(label, []).append(float(wall))
base, this = statistics.median(walls["base"]), statistics.median(walls["this"])
print(f"median wall: base ({sys.argv[2][:10]}) {base:.2f} s, this {this:.2f} s, this/base {this / base:.2f}")
PY
