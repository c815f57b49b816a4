#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quiesce developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: quiesce_backup
short_description: Run a mirror-safe freeze, snapshot and thaw backup of Caché/IRIS hosts
description:
  - Runs C(quiesce backup) with a playbook and returns its results per host
    (verdict, freeze window, snapshot ids, stun).
  - In check mode runs C(quiesce plan) instead, which reads every host's
    role and prints the plan, freezing nothing.
  - Exit 5 of quiesce (something LEFT FROZEN) fails the task with
    RV(left_frozen) true and the C(quiesce recover) command in the message,
    apart from a plain failure.
version_added: 0.1.0
author: quiesce developers (@quiesce)
extends_documentation_fragment:
  - quiesce.fleet.quiesce
options:
  playbook:
    description:
      - The quiesce backup playbook (YAML).
    type: path
    required: true
  force:
    description:
      - Snapshot a primary even when its last stun exceeded half its mirror's
        QoS timeout.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Check mode runs C(quiesce plan); nothing is frozen.
  diff_mode:
    support: none
    description: The module returns no diff.
"""

EXAMPLES = r"""
- name: Back up the production mirrors
  quiesce.fleet.quiesce_backup:
    playbook: /etc/quiesce/nightly.yml
    inventory: /etc/quiesce/inventory.yml
    runs_dir: /var/lib/quiesce/runs
  delegate_to: localhost
  register: backup

- name: Page someone when a database was left frozen
  ansible.builtin.debug:
    msg: "{{ backup.recover_command }}"
  when: backup.left_frozen | default(false)
"""

RETURN = r"""
exit_code:
  description: quiesce's exit code.
  returned: always
  type: int
  sample: 0
run_id:
  description: The run's id (its directory under the runs directory).
  returned: when a backup ran
  type: str
  sample: 20261207T031500Z-4f2a
journal:
  description: The run's journal, which C(quiesce recover) reads.
  returned: when a backup ran
  type: str
hosts:
  description: One result per host, as C(results.json) keeps it.
  returned: when a backup ran
  type: list
  elements: dict
  contains:
    host:
      description: The host's name.
      type: str
    outcome:
      description: valid, invalid, failed, left-frozen or skipped.
      type: str
    frozen_at:
      description: When the freeze held (ms since the epoch).
      type: int
    thawed_at:
      description: When the thaw ended (ms since the epoch).
      type: int
    snapshot_ids:
      description: What the snapshot provider made.
      type: list
      elements: str
skipped:
  description: Hosts left out before anything was frozen, with why.
  returned: when a backup ran
  type: list
  elements: dict
plan:
  description: The plan C(quiesce plan) printed (check mode).
  returned: in check mode
  type: dict
left_frozen:
  description: True when quiesce exited 5 (something LEFT FROZEN).
  returned: on that failure
  type: bool
left_frozen_hosts:
  description: The hosts still frozen.
  returned: when a backup ran
  type: list
  elements: str
recover_command:
  description: The command that thaws what this run left frozen.
  returned: on a LEFT FROZEN failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.quiesce.fleet.plugins.module_utils import quiesce_cli


def main():
    spec = quiesce_cli.common_argument_spec()
    spec.update(
        playbook=dict(type="path", required=True),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if module.check_mode:
        rc, data, out, err, cmd = quiesce_cli.run(
            module, ["plan", "--playbook", module.params["playbook"], "--format", "json"]
        )
        result = dict(changed=False, exit_code=rc, cmd=cmd, plan=data or {})
        quiesce_cli.fail(module, rc, err, result, "quiesce plan")
        module.exit_json(**result)
    args = ["backup", "--playbook", module.params["playbook"], "--format", "json"]
    if module.params["force"]:
        args.append("--force")
    rc, data, out, err, cmd = quiesce_cli.run(module, args)
    data = data or {}
    hosts = data.get("hosts", [])
    result = dict(
        changed=any(h.get("freeze_started") for h in hosts),
        exit_code=rc,
        cmd=cmd,
        run_id=data.get("run_id"),
        journal=data.get("journal"),
        hosts=hosts,
        skipped=data.get("skipped", []),
        left_frozen_hosts=[h.get("host") for h in hosts if h.get("outcome") == "left-frozen"],
    )
    quiesce_cli.fail(module, rc, err, result, "quiesce backup")
    if rc == quiesce_cli.FINDINGS:
        for host in hosts:
            for finding in host.get("findings", []):
                module.warn("%s: %s" % (host.get("host"), finding))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
