#!/usr/bin/env bash
# The peer benchmark: quiesce audit against the tools a site would otherwise
# use for the same read-only check of both hooks (owner, mode, sha256), on an
# N-VM lab (real sshd VMs), the same key, the same strict known_hosts, the
# same user, fan-out 20 and all at once, alternating tools over REPS
# repetitions. Installs what it needs (ansible-core, pyinfra, parallel-ssh
# from PyPI; pdsh, ClusterShell from Debian; bssh from crates.io).
#   bash benches/fleet.sh [N=100] [REPS=5] [TOOL...]
#   SWAPPED_KEYS=1 bash benches/fleet.sh 100 1   every known_hosts key moved to
#       another host: a tool that checks host keys reaches no host (answered 0)
#   LATENCY_MS=25 bash benches/fleet.sh ...   the same over 25 ms each way: a
#       delaying relay per VM (benches/delay_relay.py; this kernel has no netem)
# Measured by benches/fleet_measure.py: wall, the controller's CPU (its
# cgroup, detached ssh masters included), the machine's busy CPU, peak RSS,
# hosts that answered correctly; medians and quiesce/peer ratios.
# Figures and the machine they came from: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
reps=${2:-5}
shift $(($# < 2 ? $# : 2))
root=$(pwd)
bash tests/lab/install-deps.sh
oracles=/opt/quiesce-oracles
peers=/opt/quiesce-peers
[ -x "$oracles/bin/pyinfra" ] || "$oracles/bin/pip" install -q pyinfra parallel-ssh
if ! command -v pdsh >/dev/null || ! command -v clush >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pdsh clustershell >/dev/null
fi
# bssh 3.x needs a newer rustc than this machine's; 2.2.3 is the last that builds.
if [ $# -eq 0 ] || [[ " $* " == *" bssh "* ]]; then
	[ -x "$peers/bin/bssh" ] || cargo install --quiet --locked bssh@2.2.3 --root "$peers"
fi
cargo build --release --quiet

setup=$(mktemp -d /tmp/quiesce-fleet-XXXXXX)
# shellcheck source=benches/lab_fleet.sh
. benches/lab_fleet.sh
cleanup() {
	fleet_down
	rm -rf "$setup"
}
trap cleanup EXIT
fleet_up "$setup" 'v%03d' "$n"
q=(./target/release/quiesce -i "$setup/inventory.yml" --known-hosts "$setup/known_hosts"
	--global-known-hosts none --ssh-config none --no-agent -q)
"${q[@]}" -f 50 deploy > /dev/null
# The ground truth: each VM's hooks as they are on its disk.
python3 - "$setup" "${labs[@]}" <<'PY'
import json, subprocess, sys
setup, labs = sys.argv[1], sys.argv[2:]
expected = {}
for lab in labs:
    for line in open(f"{lab}/vms/.list"):
        vm = line.split()[0]
        out = subprocess.run(["bash", "tests/lab/lab.sh", "exec", lab, vm, "sha256sum",
                              "/usr/sbin/pre-freeze-script", "/usr/sbin/post-thaw-script"],
                             capture_output=True, text=True, check=True).stdout.split()
        expected[vm] = [out[0], out[2]]
json.dump(expected, open(f"{setup}/expected.json", "w"))
PY

# Over latency: every tool reaches the VMs through the relays.
[ -z "${LATENCY_MS:-}" ] || fleet_relays "$setup" "$LATENCY_MS"

if [ -n "${SWAPPED_KEYS:-}" ]; then
	python3 - "$setup/known_hosts" <<'PY'
import sys
path = sys.argv[1]
lines = [l.split(" ", 1) for l in open(path).read().splitlines() if l]
keys = [k for _, k in lines]
with open(path, "w") as f:
    for i, (host, _) in enumerate(lines):
        f.write(f"{host} {keys[(i + 1) % len(keys)]}\n")
PY
fi

# The one check every peer runs: owner, mode, type and sha256 of both hooks,
# on one line (a tool that interleaves output cannot split it).
hooks="/usr/sbin/pre-freeze-script /usr/sbin/post-thaw-script"
echo "echo AUDIT \$(hostname) \$(stat -c %U:%G:%a:%F $hooks) \$(sha256sum $hooks)" > "$setup/remote_cmd"
ssh_strict="-o BatchMode=yes -o UserKnownHostsFile=$setup/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -i $setup/id_ed25519 -l root"
{
	echo "[fleet]"
	cat "$setup/hosts"
	echo "[fleet:vars]"
	echo "ansible_user=root"
	echo "ansible_ssh_private_key_file=$setup/id_ed25519"
	echo "ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile=$setup/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'"
	echo "ansible_python_interpreter=/usr/bin/python3"
} > "$setup/ansible.ini"
printf '[defaults]\nhost_key_checking = True\ninterpreter_python = /usr/bin/python3\n' > "$setup/ansible.cfg"
python3 - "$setup" <<'PY'
import sys
setup = sys.argv[1]
hosts = open(f"{setup}/hosts").read().split()
data = dict(ssh_user="root", ssh_key=f"{setup}/id_ed25519", ssh_known_hosts_file=f"{setup}/known_hosts",
            ssh_strict_host_key_checking="yes", ssh_allow_agent=False, ssh_look_for_keys=False)
with open(f"{setup}/pyinfra_inventory.py", "w") as f:
    f.write(f"fleet = [(h, {data!r}) for h in {hosts!r}]\n")
PY
cat > "$setup/pssh_audit.py" <<PY
# parallel-ssh (libssh2): it offers no host-key checking to turn on.
import os
from pssh.clients import ParallelSSHClient
hosts = open("$setup/hosts").read().split()
client = ParallelSSHClient(hosts, user="root", pkey="$setup/id_ed25519",
                           pool_size=int(os.environ["FANOUT"]), num_retries=0, timeout=15)
output = client.run_command(open("$setup/remote_cmd").read().strip(), stop_on_errors=False)
client.join()
for host in output:
    for line in host.stdout or []:
        print(line)
PY
A="ANSIBLE_CONFIG=$setup/ansible.cfg ANSIBLE_LOCALHOST_WARNING=false $oracles/bin/ansible fleet -i $setup/ansible.ini -f \$FANOUT"
R="\"\$(cat $setup/remote_cmd)\""
tool() { printf '%s\t%s\n' "$1" "$2" >> "$setup/tools.tsv"; }
tool quiesce "$root/target/release/quiesce -i $setup/inventory.yml --known-hosts $setup/known_hosts --global-known-hosts none --ssh-config none --no-agent -q -f \$FANOUT audit --format json"
tool ansible-command "$A -m command -a \"sh -c '\$(cat $setup/remote_cmd)'\""
tool ansible-raw "$A -m raw -a $R"
tool pyinfra "$oracles/bin/pyinfra -y --parallel \$FANOUT $setup/pyinfra_inventory.py exec -- $R"
tool pdsh "PDSH_RCMD_TYPE=ssh PDSH_SSH_ARGS='-F /dev/null $ssh_strict %h' pdsh -f \$FANOUT -w ^$setup/hosts $R"
tool clush "clush -f \$FANOUT --hostfile $setup/hosts -O ssh_options='-F /dev/null $ssh_strict' $R"
tool parallel-ssh "$oracles/bin/python $setup/pssh_audit.py"
tool bssh "$peers/bin/bssh -H \$(paste -sd, $setup/hosts) -l root -i $setup/id_ed25519 -F /dev/null --strict-host-key-checking yes --parallel \$FANOUT $R"
tool openssh-xargs "xargs -P \$FANOUT -I{} ssh -F /dev/null $ssh_strict {} $R < $setup/hosts"
tool openssh-xargs-c25519 "xargs -P \$FANOUT -I{} ssh -F /dev/null -o KexAlgorithms=curve25519-sha256 $ssh_strict {} $R < $setup/hosts"
# bssh reads only ~/.ssh/known_hosts (and without one checks no host key at
# all, --strict-host-key-checking yes or not): the lab's keys go there.
export HOME="$setup/home"
mkdir -p "$HOME/.ssh"
cp "$setup/known_hosts" "$HOME/.ssh/known_hosts"
python3 benches/fleet_measure.py "$setup" "$reps" "$@"
