#!/usr/bin/env bash
# Inventory loading, --limit and `hosts` at fleet scale: a generated inventory
# of N hosts (default 10000) with a group of half of them and N/10 mirrors of
# three, resolved and printed as JSON through a --limit with a glob and a `!`.
# Prints the median wall time of 10 runs and the peak RSS of the last.
#   bash benches/inventory_scale.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release --quiet
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
inv=$dir/inventory.yml
{
	echo "defaults: { user: root, platform: iris }"
	echo "hosts:"
	for ((i = 0; i < n; i++)); do
		printf '  db%05d: { address: 10.%d.%d.%d }\n' "$i" $((i / 65536)) $((i / 256 % 256)) $((i % 256))
	done
	printf '  placeholder-never-selected: { address: 10.255.255.255 }\n'
	echo "groups:"
	printf '  half: { hosts: ['
	for ((i = 0; i < n; i += 2)); do printf 'db%05d, ' "$i"; done
	printf 'placeholder-never-selected] }\n'
	echo "mirrors:"
	for ((m = 0; m < n / 10; m++)); do
		printf '  M%d: { members: [db%05d, db%05d, db%05d] }\n' "$m" $((m * 10)) $((m * 10 + 1)) $((m * 10 + 2))
	done
} > "$inv"
times=()
for _ in $(seq 1 10); do
	start=$(date +%s%N)
	./target/release/quiesce -i "$inv" --limit 'half:!db0*1:!placeholder-*' hosts --format json > /dev/null
	times+=($(( ($(date +%s%N) - start) / 1000000 )))
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 5p)
rss=$(/usr/bin/time -f %M ./target/release/quiesce -i "$inv" --limit 'half:!db0*1:!placeholder-*' hosts --format json 2>&1 > /dev/null | tail -n 1)
echo "$n hosts: load + --limit + hosts --format json: median ${median} ms, peak RSS ${rss} KiB"
