#!/usr/bin/env python3
"""The peer benchmark's measuring half (benches/fleet.sh sets up the lab).

Runs every tool's read-only audit of both hooks, alternating tools within
each repetition, each run in its own cpuacct + memory cgroup (v1), so that
processes that detach (ssh ControlPersist masters) are counted and then
killed. Per run: wall time, the controller's CPU (the whole cgroup), the
machine's busy CPU (/proc/stat: what the sshd side costs), the largest
single process's peak RSS, the cgroup's peak memory, and how many hosts
answered correctly (owner, mode and sha256 of both hooks, checked against
the lab's own files). Prints the runs, then medians and quiesce/peer ratios.

  fleet_measure.py SETUP_DIR REPS TOOL... (SETUP_DIR/tools.tsv: NAME<tab>COMMAND)
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

CPUACCT = "/sys/fs/cgroup/cpuacct"
MEMORY = "/sys/fs/cgroup/memory"
HZ = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count()
AUDIT = re.compile(
    r"AUDIT (\S+) root:root:700:regular file root:root:700:regular file "
    r"([0-9a-f]{64}) \S+ ([0-9a-f]{64}) \S+"
)


def busy_seconds():
    """The machine's busy CPU so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / HZ


def make_cgroup(name):
    paths = []
    for root in (CPUACCT, MEMORY):
        path = os.path.join(root, "quiesce-bench", name)
        os.makedirs(path, exist_ok=True)
        paths.append(path)
    return paths


def kill_all(path):
    """Kills what is left in the cgroup (detached ssh masters), until empty."""
    for _ in range(50):
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def remove_cgroup(paths):
    for path in paths:
        kill_all(path)
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.05)


def answered(tool, output, expected):
    """How many hosts answered correctly."""
    good = set()
    if tool == "quiesce":
        # quiesce audit --format json: one record per host and hook.
        per_host = {}
        for record in json.loads(output or "{}").get("records", []):
            per_host.setdefault(record["host"], []).append(record["status"] == "compliant")
        return sum(1 for v in per_host.values() if len(v) == 2 and all(v))
    if tool == "bssh":
        # bssh wraps its output at 80 columns: continuation lines are indented.
        output = re.sub(r"\n  ", "", output)
    for m in AUDIT.finditer(output):
        name, pre, post = m.groups()
        if expected.get(name) == (pre, post):
            good.add(name)
    return len(good)


def run_once(setup, tool, fanout, command, expected, index):
    paths = make_cgroup(f"{tool}-{fanout}-{index}")
    env = dict(os.environ)
    env.update({"FANOUT": str(fanout), "SETUP": setup})

    def enter():
        for path in paths:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        os.setsid()

    out_path = os.path.join(setup, "out", f"{tool}-{fanout}-{index}.txt")
    with open(out_path, "wb") as out:
        busy0 = busy_seconds()
        start = time.monotonic()
        child = subprocess.Popen(
            ["bash", "-c", command], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, preexec_fn=enter,
        )
        _, status, rusage = os.wait4(child.pid, 0)
        wall = time.monotonic() - start
        busy1 = busy_seconds()
    # What detached (ssh masters) is counted, then stopped.
    kill_all(paths[0])
    with open(os.path.join(paths[0], "cpuacct.usage")) as f:
        cpu = int(f.read()) / 1e9
    with open(os.path.join(paths[1], "memory.max_usage_in_bytes")) as f:
        cgroup_peak = int(f.read()) / 1e6
    remove_cgroup(paths)
    with open(out_path, "rb") as f:
        output = f.read().decode(errors="replace")
    return {
        "tool": tool,
        "fanout": fanout,
        "wall": wall,
        "cpu": cpu,
        "busy": busy1 - busy0,
        "server": max(0.0, (busy1 - busy0) - cpu),
        "rss_mb": rusage.ru_maxrss / 1024,
        "cgroup_mb": cgroup_peak,
        "ok": answered(tool, output, expected),
        "exit": os.waitstatus_to_exitcode(status),
    }


def main():
    setup, reps = sys.argv[1], int(sys.argv[2])
    wanted = sys.argv[3:]
    tools = {}
    with open(os.path.join(setup, "tools.tsv")) as f:
        for line in f:
            name, command = line.rstrip("\n").split("\t", 1)
            tools[name] = command
    with open(os.path.join(setup, "expected.json")) as f:
        expected = {k: tuple(v) for k, v in json.load(f).items()}
    n = len(expected)
    tools = {k: v for k, v in tools.items() if not wanted or k in wanted}
    fanouts = sorted({20, min(100, n), n})
    os.makedirs(os.path.join(setup, "out"), exist_ok=True)
    runs = []
    print(f"# {n} hosts, {CORES} cores, {reps} repetitions, fan-out {fanouts}", flush=True)
    print("tool,fanout,rep,wall_s,controller_cpu_s,machine_busy_s,server_cpu_s,peak_rss_mb,cgroup_peak_mb,answered,exit", flush=True)
    for rep in range(reps):
        for fanout in fanouts:
            for tool, command in tools.items():
                r = run_once(setup, tool, fanout, command, expected, rep)
                runs.append(r)
                print(f"{tool},{fanout},{rep},{r['wall']:.2f},{r['cpu']:.2f},{r['busy']:.2f},"
                      f"{r['server']:.2f},{r['rss_mb']:.1f},{r['cgroup_mb']:.1f},{r['ok']},{r['exit']}", flush=True)
    print()
    print("# medians (ratio = quiesce / tool; floor = sshd-side CPU / cores)")
    print(f"{'tool':<22}{'fanout':>7}{'wall s':>9}{'ctl cpu s':>11}{'server s':>10}{'floor s':>9}"
          f"{'rss MB':>8}{'answered':>10}{'wall ratio':>12}{'cpu ratio':>11}")
    for fanout in fanouts:
        med = {}
        for tool in tools:
            mine = [r for r in runs if r["tool"] == tool and r["fanout"] == fanout]
            med[tool] = {k: statistics.median(r[k] for r in mine)
                         for k in ("wall", "cpu", "server", "rss_mb")}
            med[tool]["ok"] = min(r["ok"] for r in mine)
        q = med.get("quiesce")
        for tool, m in med.items():
            floor = m["server"] / CORES
            wall_ratio = f"{q['wall'] / m['wall']:.2f}" if q else "-"
            cpu_ratio = f"{q['cpu'] / m['cpu']:.2f}" if q and m["cpu"] else "-"
            print(f"{tool:<22}{fanout:>7}{m['wall']:>9.2f}{m['cpu']:>11.2f}{m['server']:>10.2f}{floor:>9.2f}"
                  f"{m['rss_mb']:>8.1f}{m['ok']:>6}/{n:<3}{wall_ratio:>12}{cpu_ratio:>11}")


if __name__ == "__main__":
    main()
