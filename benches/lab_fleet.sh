# Sourced by the benchmarks (fleet.sh, fleet_scale.sh, deploy_rewrite.sh):
# a fleet of real sshd VMs from tests/lab/lab.sh, 200 a /24 from 127.0.190,
# all under one key and one known_hosts, and optionally a delaying relay in
# front of each /24.
#   fleet_up SETUP FORMAT N [MIRROR_EVERY]   start N VMs named by the printf
#       FORMAT ('v%03d'); with MIRROR_EVERY, every MIRROR_EVERY-th VM starts a
#       mirror of three. Writes SETUP/id_ed25519, SETUP/known_hosts,
#       SETUP/hosts (one address a line) and SETUP/inventory.yml; the labs'
#       directories are in the array `labs`.
#   fleet_relays SETUP MS   every VM reached through a relay adding MS each
#       way (benches/delay_relay.py; this kernel has no netem): 127.0.180+ in
#       front of 127.0.190+, the same host keys under the relays' addresses.
#   fleet_down   stops the relays and the labs.
labs=()
relay=
fleet_up() {
	local setup=$1 format=$2 n=$3 every=${4:-}
	local made=0 net=190 count lab i names mirrors
	[ -f "$setup/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C quiesce-bench -f "$setup/id_ed25519"
	: > "$setup/known_hosts"
	: > "$setup/hosts"
	: > "$setup/hosts.part"
	: > "$setup/mirrors.part"
	while [ "$made" -lt "$n" ]; do
		count=$((n - made > 200 ? 200 : n - made))
		lab="$setup/lab$net"
		mkdir -p "$lab"
		cp "$setup/id_ed25519" "$setup/id_ed25519.pub" "$lab/"
		names=() mirrors=()
		for ((i = 1; i <= count; i++)); do
			# shellcheck disable=SC2059 # the format is the caller's
			names+=("$(printf "$format" $((made + i)))")
		done
		if [ -n "$every" ]; then
			for ((i = 0; i + 2 < count; i += every)); do
				mirrors+=(--mirror "M$((made + i))=${names[$i]},${names[$((i + 1))]},${names[$((i + 2))]}")
			done
		fi
		echo "starting $count VMs on 127.0.$net" >&2
		bash tests/lab/lab.sh up "$lab" --net "127.0.$net" "${mirrors[@]}" "${names[@]}" >/dev/null
		labs+=("$lab")
		cat "$lab/known_hosts" >> "$setup/known_hosts"
		sed -n '/^hosts:/,/^[a-z]/p' "$lab/inventory.yml" | grep -E '^  [^ ]' >> "$setup/hosts.part"
		sed -n '/^mirrors:/,$p' "$lab/inventory.yml" | grep -E '^  M' >> "$setup/mirrors.part" || true
		grep -oE 'address: [0-9.]+' "$lab/inventory.yml" | cut -d' ' -f2 >> "$setup/hosts"
		made=$((made + count)) net=$((net + 1))
	done
	{
		echo "defaults: { user: root, identity_file: $setup/id_ed25519, platform: iris }"
		echo "hosts:"
		cat "$setup/hosts.part"
		if [ -s "$setup/mirrors.part" ]; then
			echo "mirrors:"
			cat "$setup/mirrors.part"
		fi
	} > "$setup/inventory.yml"
}

fleet_relays() {
	local setup=$1 ms=$2 lab net numbers f
	for lab in "${labs[@]}"; do
		net=${lab##*lab}
		mapfile -t numbers < <(grep -oE "127\.0\.$net\.[0-9]+" "$lab/inventory.yml" | cut -d. -f4)
		mkfifo "$setup/relay$net.ready"
		python3 benches/delay_relay.py "$ms" "127.0.$((net - 10))" "127.0.$net" "${numbers[@]}" > "$setup/relay$net.ready" &
		relay="$relay $!"
		read -r _ < "$setup/relay$net.ready"
	done
	relay=${relay# }
	for f in hosts known_hosts inventory.yml; do
		sed -i -E 's/127\.0\.19([0-9])\./127.0.18\1./g' "$setup/$f"
	done
}

fleet_down() {
	local lab
	# shellcheck disable=SC2086 # one pid per relay
	[ -z "$relay" ] || kill $relay 2>/dev/null || true
	relay=
	for lab in "${labs[@]}"; do bash tests/lab/lab.sh down "$lab" >/dev/null 2>&1 || true; done
	labs=()
}
