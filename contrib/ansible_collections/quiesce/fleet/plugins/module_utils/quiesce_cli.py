# -*- coding: utf-8 -*-
# Copyright: quiesce developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the quiesce CLI from a module: the common options, the command
line, the JSON it prints, and what its exit codes mean for Ansible."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.basic import env_fallback

SUCCESS = 0
FINDINGS = 1
USAGE = 2
UNREACHABLE = 3
FAILED = 4
LEFT_FROZEN = 5
INTERRUPTED = 130


def common_argument_spec():
    """The options of the quiesce doc fragment."""
    return dict(
        binary=dict(type="str", default="quiesce"),
        inventory=dict(type="path", fallback=(env_fallback, ["QUIESCE_INVENTORY"])),
        limit=dict(type="str"),
        known_hosts=dict(type="path", fallback=(env_fallback, ["QUIESCE_KNOWN_HOSTS"])),
        identity_file=dict(
            type="path", fallback=(env_fallback, ["QUIESCE_IDENTITY_FILE"]), no_log=False
        ),
        runs_dir=dict(type="path", fallback=(env_fallback, ["QUIESCE_RUNS_DIR"])),
        ssh_config=dict(type="str"),
        forks=dict(type="int"),
        accept_new=dict(type="list", elements="str"),
        connect_timeout=dict(type="str"),
        command_timeout=dict(type="str"),
    )


def command(module, args):
    """The full command line: the binary, the global options, then ARGS.
    Every value is its own argument: nothing goes through a shell."""
    p = module.params
    binary = p["binary"]
    if "/" not in binary:
        binary = module.get_bin_path(binary, required=True)
    cmd = [binary, "--quiet"]
    for flag, key in (
        ("--inventory", "inventory"),
        ("--limit", "limit"),
        ("--known-hosts", "known_hosts"),
        ("--runs-dir", "runs_dir"),
        ("--ssh-config", "ssh_config"),
        ("--connect-timeout", "connect_timeout"),
        ("--command-timeout", "command_timeout"),
    ):
        if p.get(key) is not None:
            cmd.extend([flag, str(p[key])])
    if p.get("forks") is not None:
        cmd.extend(["--forks", str(p["forks"])])
    if p.get("accept_new"):
        cmd.append("--accept-new=" + ",".join(p["accept_new"]))
    cmd.extend(args)
    return cmd


def run(module, args, parse_json=True):
    """Runs quiesce; returns (exit code, parsed JSON or None, stdout, stderr, cmd)."""
    cmd = command(module, args)
    environ = {}
    if module.params.get("identity_file"):
        environ["QUIESCE_IDENTITY_FILE"] = module.params["identity_file"]
    rc, out, err = module.run_command(cmd, environ_update=environ)
    data = None
    if parse_json and out.strip():
        try:
            data = json.loads(out)
        except ValueError:
            module.fail_json(
                msg="quiesce printed output that is not JSON (exit %d): %s" % (rc, last_line(err) or out[:500]),
                cmd=cmd,
                exit_code=rc,
                stdout=out,
                stderr=err,
            )
    return rc, data, out, err, cmd


def last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def error_lines(text):
    """quiesce's `error:` lines and their hints, for msg."""
    lines = [line.rstrip() for line in (text or "").splitlines()]
    kept = [line.strip() for line in lines if line.startswith("error:") or line.startswith("  hint:")]
    return " ".join(kept) if kept else last_line(text)


def fail(module, rc, err, result, what):
    """Ends the module for exit codes that are failures: LEFT FROZEN (5) is
    its own failure, with `left_frozen: true` and the recover command."""
    if rc == LEFT_FROZEN:
        hosts = result.get("left_frozen_hosts") or []
        run_id = result.get("run_id")
        recover = "quiesce recover %s" % run_id if run_id else "quiesce recover RUN"
        module.fail_json(
            msg="LEFT FROZEN: %s still frozen after %s; thaw now: %s (%s)"
            % (", ".join(hosts) or "a host is", what, recover, error_lines(err) or "see the report"),
            left_frozen=True,
            recover_command=recover,
            **result
        )
    if rc == INTERRUPTED:
        module.fail_json(msg="%s was interrupted (everything it froze was thawed)" % what, **result)
    if rc in (USAGE, UNREACHABLE, FAILED) or rc > FAILED:
        reasons = {
            USAGE: "bad input",
            UNREACHABLE: "a host was unreachable",
            FAILED: "a step failed or a snapshot is INVALID",
        }
        module.fail_json(
            msg="%s: %s (exit %d): %s" % (what, reasons.get(rc, "failed"), rc, error_lines(err)),
            **result
        )
