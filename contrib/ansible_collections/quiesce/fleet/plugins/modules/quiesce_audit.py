#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quiesce developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: quiesce_audit
short_description: Audit the freeze/thaw hooks of Caché/IRIS hosts (root:root, 0700, unchanged)
description:
  - Runs C(quiesce audit) and returns one record per hook with its findings
    (owner, mode, content, directory, VMware Tools' and qemu-guest-agent's
    settings).
  - Read-only unless O(fix) is true; in check mode O(fix) is ignored.
version_added: 0.1.0
author: quiesce developers (@quiesce)
extends_documentation_fragment:
  - quiesce.fleet.quiesce
options:
  fix:
    description:
      - Redeploy what is not compliant (C(quiesce audit --fix)).
    type: bool
    default: false
  fail_on_findings:
    description:
      - Fail the task when a hook is not compliant (exit 1), for a
        compliance job that must go red.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Check mode audits and changes nothing.
  diff_mode:
    support: none
    description: The module returns no diff.
"""

EXAMPLES = r"""
- name: Compliance audit of every hook
  quiesce.fleet.quiesce_audit:
    inventory: /etc/quiesce/inventory.yml
    fail_on_findings: true
  delegate_to: localhost
"""

RETURN = r"""
exit_code:
  description: quiesce's exit code (1 when a hook is not compliant).
  returned: always
  type: int
compliant:
  description: Every hook is compliant.
  returned: always
  type: bool
counts:
  description: Records per status.
  returned: always
  type: dict
records:
  description: One record per hook, with its findings (each a dict with its C(code)).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.quiesce.fleet.plugins.module_utils import quiesce_cli


def main():
    spec = quiesce_cli.common_argument_spec()
    spec.update(
        fix=dict(type="bool", default=False),
        fail_on_findings=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    args = ["audit", "--format", "json"]
    fixing = module.params["fix"] and not module.check_mode
    if fixing:
        args.append("--fix")
    rc, data, out, err, cmd = quiesce_cli.run(module, args)
    data = data or {}
    records = data.get("records", [])
    result = dict(
        changed=fixing and any(r.get("status") in ("created", "updated") for r in records),
        exit_code=rc,
        cmd=cmd,
        compliant=rc == quiesce_cli.SUCCESS,
        counts=data.get("counts", {}),
        records=records,
    )
    quiesce_cli.fail(module, rc, err, result, "quiesce audit")
    if rc == quiesce_cli.FINDINGS and module.params["fail_on_findings"]:
        module.fail_json(msg="quiesce audit: hooks are not compliant: %s" % ", ".join(
            sorted(set("%s:%s" % (r.get("host"), r.get("path")) for r in records if r.get("status") == "non-compliant"))), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
