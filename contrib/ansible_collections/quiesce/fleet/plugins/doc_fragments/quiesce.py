# -*- coding: utf-8 -*-
# Copyright: quiesce developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The options every quiesce module passes to the CLI.
    DOCUMENTATION = r"""
options:
  binary:
    description:
      - The quiesce binary, a path or a name looked up on C(PATH) on the
        host the module runs on (the Ansible controller or an AWX
        execution node).
    type: str
    default: quiesce
  inventory:
    description:
      - quiesce's inventory, or an Ansible one (YAML, INI, the JSON of
        C(ansible-inventory --list), or an executable inventory script such
        as the one AWX writes for a job, run with C(--list)).
      - Defaults to the C(QUIESCE_INVENTORY) environment variable.
    type: path
  limit:
    description:
      - Only these hosts, groups, mirrors or globs (quiesce's C(--limit)).
    type: str
  known_hosts:
    description:
      - The known_hosts file host keys are checked against. quiesce never
        trusts an unknown host key unless O(accept_new) names the host.
      - Defaults to the C(QUIESCE_KNOWN_HOSTS) environment variable (the
        quiesce credential type injects it).
    type: path
  identity_file:
    description:
      - A private key file used for hosts whose inventory and ssh_config
        name none. Defaults to C(QUIESCE_IDENTITY_FILE) (the quiesce
        credential type injects it). An ssh-agent (an AWX machine
        credential) is used as well.
    type: path
  runs_dir:
    description:
      - Where backup runs keep their journals and results. Keep it on
        persistent storage so that M(quiesce.fleet.quiesce_recover) finds a
        run after the job that started it died.
      - Defaults to C(QUIESCE_RUNS_DIR), else C(runs) in the working
        directory.
    type: path
  ssh_config:
    description:
      - The ssh_config file read for each host, or C(none).
    type: str
  forks:
    description:
      - How many hosts quiesce works on at once.
    type: int
  accept_new:
    description:
      - Hosts whose first host key is recorded (OpenSSH's accept-new). A
        changed key is refused all the same.
    type: list
    elements: str
  connect_timeout:
    description:
      - How long to wait for a host to answer and log in, e.g. C(10s).
    type: str
  command_timeout:
    description:
      - How long one remote command may run, e.g. C(60s).
    type: str
notes:
  - The module runs the quiesce CLI with C(--format json) on the host the
    task runs on (use C(delegate_to) localhost or C(connection) local);
    quiesce itself connects to the inventory's VMs over SSH.
  - Exit codes of quiesce are kept in RV(exit_code). 0 success, 1 findings,
    2 bad input, 3 a host unreachable, 4 a step failed, 5 something LEFT
    FROZEN, 130 interrupted.
"""
