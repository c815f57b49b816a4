#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quiesce developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: quiesce_recover
short_description: Thaw what a crashed or killed backup run left frozen
description:
  - Runs C(quiesce recover RUN), which reads the run's journal, asks every
    host the journal cannot vouch for, and thaws what is still frozen.
  - Safe to run again; a run with nothing left frozen changes nothing.
version_added: 0.1.0
author: quiesce developers (@quiesce)
extends_documentation_fragment:
  - quiesce.fleet.quiesce
options:
  run:
    description:
      - The run id (a directory under O(runs_dir)) or a journal path.
    type: str
    required: true
  force:
    description:
      - Recover a run whose controller still holds its lock (only when that
        process is hung).
    type: bool
    default: false
attributes:
  check_mode:
    support: none
    description: A recovery thaws what is frozen; there is nothing to do only halfway.
  diff_mode:
    support: none
    description: The module returns no diff.
"""

EXAMPLES = r"""
- name: Thaw what the failed backup left frozen
  quiesce.fleet.quiesce_recover:
    run: "{{ backup.run_id }}"
    runs_dir: /var/lib/quiesce/runs
  delegate_to: localhost
  when: backup.left_frozen | default(false)
"""

RETURN = r"""
exit_code:
  description: quiesce's exit code (5 when something could not be thawed).
  returned: always
  type: int
thawed:
  description: The hosts this recovery thawed (or found thawed), each with what it found.
  returned: always
  type: list
  elements: dict
still_frozen:
  description: The hosts that could not be thawed.
  returned: always
  type: list
  elements: str
lines:
  description: What recover said, one line per host.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.quiesce.fleet.plugins.module_utils import quiesce_cli


def main():
    spec = quiesce_cli.common_argument_spec()
    spec.update(
        run=dict(type="str", required=True),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=False)
    args = ["recover", module.params["run"], "--format", "json"]
    if module.params["force"]:
        args.append("--force")
    rc, data, out, err, cmd = quiesce_cli.run(module, args)
    data = data or {}
    result = dict(
        changed=bool(data.get("thawed")),
        exit_code=rc,
        cmd=cmd,
        run_id=data.get("run_id") or module.params["run"],
        thawed=data.get("thawed", []),
        still_frozen=data.get("still_frozen", []),
        lines=data.get("lines", []),
    )
    if rc == quiesce_cli.LEFT_FROZEN:
        result["left_frozen_hosts"] = result["still_frozen"]
    quiesce_cli.fail(module, rc, err, result, "quiesce recover")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
