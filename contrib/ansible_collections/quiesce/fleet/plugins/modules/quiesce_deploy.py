#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quiesce developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: quiesce_deploy
short_description: Install or update the freeze/thaw hooks on Caché/IRIS hosts
description:
  - Runs C(quiesce deploy), which writes only what differs (atomically,
    root:root 0700) and verifies it.
  - In check mode runs C(quiesce deploy --check --diff) and returns the
    diff of each hook that would change.
version_added: 0.1.0
author: quiesce developers (@quiesce)
extends_documentation_fragment:
  - quiesce.fleet.quiesce
options:
  force:
    description:
      - Replace a symlink or another non-regular file in a hook's place.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Check mode runs C(quiesce deploy --check --diff).
  diff_mode:
    support: full
    description: The diff of every hook that changes (or would).
"""

EXAMPLES = r"""
- name: Deploy the hooks, showing what would change first
  quiesce.fleet.quiesce_deploy:
    inventory: /etc/quiesce/inventory.yml
  delegate_to: localhost
  check_mode: true
  diff: true
"""

RETURN = r"""
exit_code:
  description: quiesce's exit code.
  returned: always
  type: int
counts:
  description: Records per status (created, updated, unchanged, would-change, ...).
  returned: always
  type: dict
records:
  description: One record per hook.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.quiesce.fleet.plugins.module_utils import quiesce_cli


def main():
    spec = quiesce_cli.common_argument_spec()
    spec.update(force=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    args = ["deploy", "--format", "json"]
    if module.check_mode or module._diff:
        args.append("--diff")
    if module.check_mode:
        args.append("--check")
    if module.params["force"]:
        args.append("--force")
    rc, data, out, err, cmd = quiesce_cli.run(module, args)
    data = data or {}
    records = data.get("records", [])
    changing = ("would-change",) if module.check_mode else ("created", "updated")
    result = dict(
        changed=any(r.get("status") in changing for r in records),
        exit_code=rc,
        cmd=cmd,
        counts=data.get("counts", {}),
        records=records,
    )
    diffs = [
        dict(before_header="%s:%s" % (r.get("host"), r.get("path")),
             after_header="%s:%s" % (r.get("host"), r.get("path")),
             prepared=r["diff"])
        for r in records if r.get("diff")
    ]
    if diffs:
        result["diff"] = diffs
    # --check reports pending changes with exit 1: that is check mode's answer.
    if not (module.check_mode and rc == quiesce_cli.FINDINGS):
        quiesce_cli.fail(module, rc, err, result, "quiesce deploy")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
