"""Run the Procfile for `make run`, and stop all of it when asked, every time.

    python scripts/procfile.py [--procfile Procfile] [--first web --first-url URL] [--grace 30]

Why not honcho (which `make run` used): it sends SIGTERM to every process group and SIGKILL 5 s
later, which cut the Celery worker's warm shutdown short; and when honcho itself died (a closed
terminal sends SIGHUP, which it does not handle), its children lived on, the worker still
reading the queue. Here:

- each line runs in a process group of its own; SIGINT, SIGTERM or SIGHUP stops them all:
  SIGTERM to each group, up to --grace seconds (30) for them to finish (the worker's line runs
  under scripts/supervise.py, which passes SIGTERM to the worker alone so that it shuts down
  warm), then SIGKILL to every group and every descendant still alive;
- each line gets SIGTERM from Linux if this runner is killed outright (PR_SET_PDEATHSIG);
- the pid file var/procfile.pid names this runner and the groups it started. A second
  `make run` while one runs refuses to start; one that finds groups left by a runner that died
  (killed with SIGKILL, say) stops them first and says so;
- a process that exits by itself is reported, and the others keep running (scripts/supervise.py
  restarts the ones marked --restart); only the web process ending stops everything;
- with --first web, that line starts first and the others once --first-url answers (at most
  60 s later): the first page does not wait behind the worker's, beat's and localstripe's
  start-up on a small machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervise import die_with_parent  # noqa: E402 - scripts/ is not a package

LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>.+)$")
print_lock = threading.Lock()


def say(name: str, text: str) -> None:
    with print_lock:
        print(f"{time.strftime('%H:%M:%S')} {name:<8} | {text}", flush=True)


def procfile_read(path: Path) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        match = LINE.match(line.strip())
        if match and not line.lstrip().startswith("#"):
            entries.append((match["name"], match["command"]))
    return entries


def var_dir() -> Path:
    return Path(os.environ.get("FLYWHEEL_VAR_DIR") or ROOT / "var")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process on the machine (Linux /proc; none
    elsewhere: there only the process groups themselves are signalled)."""
    found = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found.append((int(entry.name), int(fields[1]), int(fields[2])))
    return found


def descendants(root: int) -> set[int]:
    table = processes()
    children: dict[int, list[int]] = {}
    for pid, parent, _ in table:
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def group_members(pgid: int) -> list[int]:
    """The processes of group `pgid` that run in this project (their working folder is ROOT):
    a group number reused by something else after a reboot is never touched."""
    members = []
    for pid, _, group in processes():
        if group != pgid:
            continue
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")) == ROOT:
                members.append(pid)
        except OSError:
            continue
    return members


def signal_all(pids: set[int], pgids: list[int], signum: int) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def leftovers_stop(pid_file: Path, grace: float) -> None:
    """Refuse to run beside a live runner; stop what a dead one left behind."""
    try:
        recorded = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return
    runner = int(recorded.get("runner", 0))
    if runner and pid_alive(runner) and runner != os.getpid():
        try:
            cmdline = Path(f"/proc/{runner}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"procfile.py" in cmdline:
            raise SystemExit(
                f"make run is already running (pid {runner}, {pid_file}). Stop it first (Ctrl-C in its "
                f"terminal, or kill {runner})."
            )
    groups = [int(pgid) for pgid in recorded.get("groups", []) if group_members(int(pgid))]
    if groups:
        left = {pid for pgid in groups for pid in group_members(pgid)}
        say("procfile", f"stopping {len(left)} process(es) left over by an earlier make run (pid {runner})")
        signal_all(set(), groups, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(group_members(pgid) for pgid in groups):
            time.sleep(0.2)
        signal_all({pid for pgid in groups for pid in group_members(pgid)}, groups, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def url_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - our own local web process
            return True
    except urllib.error.HTTPError:
        return True  # it answered, with an error page: it is up
    except (urllib.error.URLError, OSError):
        return False


class Runner:
    def __init__(self, entries: list[tuple[str, str]], grace: float, pid_file: Path) -> None:
        self.entries = entries
        self.grace = grace
        self.pid_file = pid_file
        self.children: dict[str, subprocess.Popen] = {}
        self.stop_requested = threading.Event()
        self.reason = ""

    def record(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.pid_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"runner": os.getpid(), "groups": [c.pid for c in self.children.values()]}))
        temporary.replace(self.pid_file)

    def start(self, name: str, command: str) -> None:
        child = subprocess.Popen(  # noqa: S603 - the Procfile's own lines
            ["/bin/sh", "-c", f"exec {command}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
            preexec_fn=die_with_parent,  # noqa: PLW1509 - a prctl call, before any thread is started
        )
        self.children[name] = child
        self.record()
        say(name, f"started (pid {child.pid}): {command}")
        threading.Thread(target=self._relay, args=(name, child), daemon=True).start()

    def _relay(self, name: str, child: subprocess.Popen) -> None:
        for line in child.stdout or ():
            say(name, line.rstrip("\n"))

    def request_stop(self, signum: int, frame: object) -> None:
        if not self.stop_requested.is_set():
            self.reason = signal.Signals(signum).name
        self.stop_requested.set()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, reporting children that exit by themselves."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            for name, child in list(self.children.items()):
                if child.poll() is not None and not getattr(child, "reported", False):
                    child.reported = True  # type: ignore[attr-defined]
                    say(name, f"exited with code {child.returncode}")
                    if name == "web" or all(c.poll() is not None for c in self.children.values()):
                        self.reason = f"{name} exited"
                        self.stop_requested.set()
            time.sleep(0.2)

    def stop_all(self) -> None:
        say("procfile", f"{self.reason or 'stop'}: stopping every process (SIGTERM, then SIGKILL after {self.grace:g} s)")
        tree = {pid for child in self.children.values() for pid in descendants(child.pid)}
        groups = [child.pid for child in self.children.values()]
        signal_all(set(), groups, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            if all(child.poll() is not None for child in self.children.values()) and not any(
                pid_alive(pid) for pid in tree
            ):
                break
            time.sleep(0.1)
            tree |= {pid for child in self.children.values() if child.poll() is None for pid in descendants(child.pid)}
        survivors = {pid for pid in tree if pid_alive(pid)}
        if survivors or any(child.poll() is None for child in self.children.values()):
            say("procfile", f"still running after {self.grace:g} s: killing {sorted(survivors) or 'them'}")
        signal_all(survivors, groups, signal.SIGKILL)
        for name, child in self.children.items():
            child.wait()
            say(name, f"stopped (code {child.returncode})")
        self.pid_file.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procfile", default=str(ROOT / "Procfile"))
    parser.add_argument("--first", help="the Procfile line to start before the others (web)")
    parser.add_argument("--first-url", help="start the others once this URL answers (at most 60 s)")
    parser.add_argument("--grace", type=float, default=35.0, help="seconds between SIGTERM and SIGKILL (35)")
    args = parser.parse_args()
    entries = procfile_read(Path(args.procfile))
    pid_file = var_dir() / "procfile.pid"
    leftovers_stop(pid_file, args.grace)
    runner = Runner(entries, args.grace, pid_file)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, runner.request_stop)
    try:
        first = [(name, command) for name, command in entries if name == args.first]
        for name, command in first:
            runner.start(name, command)
        if first and args.first_url:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not runner.stop_requested.is_set() and not url_answers(args.first_url):
                runner.wait(0.2)
        for name, command in entries:
            if name not in runner.children and not runner.stop_requested.is_set():
                runner.start(name, command)
        while not runner.stop_requested.is_set():
            runner.wait(1.0)
    finally:
        # Stopping must not be interrupted by a second Ctrl-C.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        runner.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
