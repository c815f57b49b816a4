#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quiesce developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: quiesce_status
short_description: The last valid backup of each Caché/IRIS instance, and its age
description:
  - Runs C(quiesce status), which reads the runs directory and the logs
    C(quiesce logs) collected (freezes quiesce, VMware Tools or a backup
    product started).
  - Read-only.
version_added: 0.1.0
author: quiesce developers (@quiesce)
extends_documentation_fragment:
  - quiesce.fleet.quiesce
options:
  max_age:
    description:
      - The RPO, e.g. C(26h). An instance without a valid backup this recent
        is stale.
    type: str
  last:
    description:
      - How many of each instance's last backups to return.
    type: int
    default: 5
  fail_on_stale:
    description:
      - Fail the task when an instance is stale.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module changes nothing.
  diff_mode:
    support: none
    description: The module returns no diff.
"""

EXAMPLES = r"""
- name: Every instance has a backup of the last 26 hours
  quiesce.fleet.quiesce_status:
    inventory: /etc/quiesce/inventory.yml
    runs_dir: /var/lib/quiesce/runs
    max_age: 26h
    fail_on_stale: true
  delegate_to: localhost
"""

RETURN = r"""
exit_code:
  description: quiesce's exit code (1 when an instance is stale).
  returned: always
  type: int
instances:
  description: One entry per instance, with its last valid backup and its age.
  returned: always
  type: list
  elements: dict
stale:
  description: The instances (C(host/instance)) without a valid backup within O(max_age).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.quiesce.fleet.plugins.module_utils import quiesce_cli


def main():
    spec = quiesce_cli.common_argument_spec()
    spec.update(
        max_age=dict(type="str"),
        last=dict(type="int", default=5),
        fail_on_stale=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    args = ["status", "--format", "json", "--last", str(module.params["last"])]
    if module.params["max_age"]:
        args.extend(["--max-age", module.params["max_age"]])
    rc, data, out, err, cmd = quiesce_cli.run(module, args)
    instances = data or []
    stale = ["%s/%s" % (i.get("host"), i.get("instance")) for i in instances if i.get("finding")]
    result = dict(changed=False, exit_code=rc, cmd=cmd, instances=instances, stale=stale)
    quiesce_cli.fail(module, rc, err, result, "quiesce status")
    if stale and module.params["fail_on_stale"]:
        module.fail_json(msg="no valid backup within %s: %s" % (module.params["max_age"], ", ".join(stale)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
