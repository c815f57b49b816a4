#!/usr/bin/env bash
# Installs what the lab and the tests need on a Debian machine, as root:
# OpenSSH's sshd, sudo, shellcheck, util-linux (unshare, nsenter, flock),
# Chromium (the HTML report is checked in a real browser).
# Does nothing when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" = 0 ] || { echo "the lab needs root (mount namespaces, cgroups, sshd)" >&2; exit 2; }
missing=()
command -v /usr/sbin/sshd >/dev/null || missing+=(openssh-server)
command -v sudo >/dev/null || missing+=(sudo)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v nsenter >/dev/null && command -v unshare >/dev/null && command -v flock >/dev/null || missing+=(util-linux)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v python3 >/dev/null || missing+=(python3)   # the soak reads results.json
command -v chromium >/dev/null || missing+=(chromium)   # the HTML report test renders the page
[ -e /usr/share/zoneinfo/America/New_York ] || missing+=(tzdata)   # a lab VM in another time zone
command -v locale-gen >/dev/null || missing+=(locales)   # ... and another locale
command -v promtool >/dev/null || missing+=(prometheus)   # promtool checks the metrics and alert rules
command -v qemu-ga >/dev/null || missing+=(qemu-guest-agent)   # the qemu-ga framework test drives the real agent
command -v go >/dev/null || missing+=(golang-go)   # the vSphere provider test builds vcsim offline
[ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] || missing+=(golang-github-vmware-govmomi-dev)
command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)   # the btrfs snapshot provider test
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)   # ... on a loop-mounted file system
command -v systemd-analyze >/dev/null || missing+=(systemd)   # systemd-analyze verify checks the units
[ -x /usr/bin/time ] || missing+=(time)   # GNU time measures the controller's peak memory under a flood
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)   # the venv of the oracles below
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The time-zone test's VM speaks German (`date` in de_DE.UTF-8).
if ! locale -a 2>/dev/null | grep -qix 'de_DE.utf8'; then
	sed -i 's/^# *\(de_DE.UTF-8 UTF-8\)/\1/' /etc/locale.gen
	grep -qx 'de_DE.UTF-8 UTF-8' /etc/locale.gen || echo 'de_DE.UTF-8 UTF-8' >> /etc/locale.gen
	locale-gen >/dev/null
fi
# ansible-core from PyPI: ansible-inventory is the oracle the Ansible
# inventory tests hold quiesce to (2.19 runs on Python 3.11 as well as 3.12).
oracles=/opt/quiesce-oracles
if ! [ -x "$oracles/bin/ansible-inventory" ]; then
	echo "installing ansible-core into $oracles" >&2
	python3 -m venv "$oracles"
	"$oracles/bin/pip" install -q 'ansible-core>=2.19,<2.20'
fi
# ansible-runner (the job events AWX stores) and ansible-builder (the
# execution environment's build context), for the collection's tests.
if ! [ -x "$oracles/bin/ansible-runner" ] || ! [ -x "$oracles/bin/ansible-builder" ]; then
	echo "installing ansible-runner and ansible-builder into $oracles" >&2
	"$oracles/bin/pip" install -q 'ansible-runner>=2.4,<2.5' 'ansible-builder>=3.1,<3.2'
fi
# moto in server mode: the EC2 the aws-ebs provider's tests run against
# (tests/lab/ebs-double puts a proxy before it), in a venv of its own so its
# boto3 pins never meet ansible's.
moto=/opt/quiesce-moto
if ! "$moto/bin/python" -c 'import moto.moto_server.threaded_moto_server, boto3' 2>/dev/null; then
	echo "installing moto into $moto" >&2
	python3 -m venv "$moto"
	"$moto/bin/pip" install -q 'moto[server,ec2]>=5.1,<6'
fi
# ansible-test sanity bootstraps pip in its venvs from a script on
# ci-files.testing.ansible.com, which only PyPI-reachable machines cannot
# fetch: this stand-in installs the same pip from PyPI instead (the system
# CA bundle passed on, as ansible-test runs pip without pip.conf).
cache=$HOME/.ansible/test/cache
if ! [ -f "$cache/get_pip_24_2.py" ]; then
	mkdir -p "$cache"
	cp "$here/get_pip_standin.py" "$cache/get_pip_24_2.py"
fi
# A distribution sshd on port 22 of every address would take the lab's port.
if [ -x /etc/init.d/ssh ] && ss -ltn 2>/dev/null | grep -q '0.0.0.0:22 '; then
	echo "note: an sshd listens on 0.0.0.0:22; the lab uses port 22 on 127.0.x.y and may fail to bind" >&2
fi
mountpoint -q /sys/fs/cgroup/freezer || { echo "the lab needs the cgroup v1 freezer at /sys/fs/cgroup/freezer" >&2; exit 2; }
