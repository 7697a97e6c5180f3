"""Run one command of the Procfile, restart it when it dies, stop it cleanly when asked.

    python scripts/supervise.py [--restart] [--grace SECONDS] -- COMMAND [ARGS...]

- The command runs in a process group of its own. SIGTERM, SIGINT or SIGHUP sent to this
  script is passed on as SIGTERM to the command's main process only: a Celery worker then makes
  its warm shutdown (finishes its tasks, stops its pool) instead of having its pool killed
  under it. After --grace seconds (30) whatever is left of the group is killed.
- With --restart, a command that exits by itself is started again after 1 s, then 2, 4 ... at
  most 30 s while it keeps dying; the wait starts again at 1 s once it has run a minute. So one
  crash of the worker no longer takes `make run` down.
- When the process that started this script goes away without stopping it (the Procfile runner
  killed with SIGKILL, a closed terminal), the command is stopped as above: nothing keeps
  reading the queue after `make run` is gone. And when this script itself is killed outright,
  Linux sends the command SIGTERM (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

BACKOFF_FIRST, BACKOFF_MAX, STABLE_SECONDS = 1.0, 30.0, 60.0
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when the process that started it
    dies, even by SIGKILL (prctl PR_SET_PDEATHSIG); elsewhere nothing happens."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def say(message: str) -> None:
    print(f"supervise: {message}", flush=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(child: subprocess.Popen, grace: float) -> int:
    """SIGTERM to the command's main process, then SIGKILL to its group after `grace` s."""
    if child.poll() is None:
        try:
            child.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            say(f"{child.args[0]} still running {grace:g} s after SIGTERM: killing it")
    # Anything of the group still there (the main process, or children it left behind).
    if group_alive(child.pid):
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    child.wait()
    return child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restart", action="store_true", help="start the command again when it exits by itself")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds between SIGTERM and SIGKILL (30)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    stopping: list[int] = []

    def request_stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)
    parent = os.getppid()
    backoff = BACKOFF_FIRST
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent)  # noqa: S603, PLW1509
        while child.poll() is None and not stopping:
            if os.getppid() != parent:
                say("the process that started me is gone: stopping")
                stopping.append(signal.SIGTERM)
                break
            try:
                child.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        if stopping:
            stop(child, args.grace)
            return 0
        code = child.returncode
        # The command exited by itself: make sure nothing of its group is left behind.
        if group_alive(child.pid):
            os.killpg(child.pid, signal.SIGKILL)
        if not args.restart:
            return code
        if time.monotonic() - started >= STABLE_SECONDS:
            backoff = BACKOFF_FIRST
        say(f"{command[0]} exited with code {code}; starting it again in {backoff:g} s")
        deadline = time.monotonic() + backoff
        while time.monotonic() < deadline and not stopping and os.getppid() == parent:
            time.sleep(0.1)
        if stopping or os.getppid() != parent:
            return 0
        backoff = min(backoff * 2, BACKOFF_MAX)


if __name__ == "__main__":
    sys.exit(main())
