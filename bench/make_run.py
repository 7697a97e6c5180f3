"""How long a newcomer waits: `make run` on a fresh clone, until the landing page answers.

    uv run python bench/make_run.py                 # HEAD, exported into a temporary folder
    uv run python bench/make_run.py --rev 6d782cc   # another commit, e.g. to compare
    uv run python bench/make_run.py --runs 3        # several fresh starts, one after the other
    uv run python bench/make_run.py --keep          # keep the temporary folder (and its logs)

What it does, each run:
- exports the commit (`git archive`, HEAD by default: commit what you want measured) into a new
  temporary folder, with `.venv` a link to this checkout's (the target counts from "after
  dependencies are installed", and `make install` then finds them there);
- runs `make run PORT=<free port>` there, in a process group of its own, with what a newcomer
  has: no DATABASE_URL, REDIS_URL, SITE_URL or Stripe keys (so SQLite and kombu's filesystem
  broker under the new folder's var/), LOCALSTRIPE_PORT a free port too;
- stamps every line `make run` prints as it arrives, and asks for http://127.0.0.1:<port>/
  every 0.1 s until it answers 200;
- stops `make run` as a terminal's Ctrl-C does (SIGINT to its process group), waits for it,
  and lists any process of the run still alive afterwards (it then kills them and says so).

It prints the time from `make run` to the first 200 and its parts, read from the lines
`make run` prints (`==> migrate` ... as each step starts, and the times the setup command
reports): install (`uv sync`), migrate, catalog_sync, demo data, then the Procfile's start until
the first page; also the CPU time the run used, the load average and a speed probe, since on a
shared machine the wall time says as much about the neighbours as about Flywheel.

Target (issue 16): under 30 s from `make run` to the first page, dependencies installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from _harness import ROOT, free_port, heading, load_average

TARGET_SECONDS = 30.0
# A newcomer's environment: none of the variables that point Flywheel at real services.
UNSET = (
    "DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL", "SITE_URL", "FLYWHEEL_VAR_DIR",
    "MAIL_DIR", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE", "STRIPE_JS_URL", "CELERY_QUEUE", "DJANGO_SETTINGS_MODULE", "FLYWHEEL_ENV",
    "POSTHOG_API_KEY", "EMAIL_HOST", "VIRTUAL_ENV",
)
SETUP_TIMES = re.compile(r"(?P<step>migrate|catalog_sync|demo data) (?P<seconds>[0-9.]+) s(?: \(CPU (?P<cpu>[0-9.]+) s\))?")


def speed_probe() -> float:
    """Milliseconds for a fixed pure-Python loop, best of 5 (lower is a faster machine)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for number in range(300_000):
            total += number % 7
        best = min(best, time.perf_counter() - start)
    return best * 1000


def processes_of_run(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environment holds `marker`: all that the run
    started, however they were detached (new sessions, reparented to init)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if marker.encode() not in environ:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append((int(entry.name), cmdline))
    return found


def children_cpu_seconds() -> float:
    times = os.times()
    return times.children_user + times.children_system


class Run:
    def __init__(self, folder: Path, port: int, env: dict[str, str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.start = time.monotonic()
        self.popen = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, text=True, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append((time.monotonic() - self.start, line.rstrip("\n")))

    def when(self, pattern: str) -> float | None:
        for moment, line in self.lines:
            if pattern in line:
                return moment
        return None

    def stop(self, timeout: float) -> tuple[float, int | None]:
        """SIGINT to the whole process group, as Ctrl-C in a terminal; (seconds, exit code)."""
        began = time.monotonic()
        try:
            os.killpg(self.popen.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        self._reader.join(5)
        return time.monotonic() - began, code


def one_run(args: argparse.Namespace, number: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="flywheel-make-run-"))
    marker = f"FLYWHEEL_BENCH_MAKE_RUN={folder.name}"
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", args.rev], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
        (folder / ".venv").symlink_to(ROOT / ".venv")
        port, stripe_port = free_port(), free_port()
        env = {key: value for key, value in os.environ.items() if key not in UNSET}
        env.update(
            {
                "LOCALSTRIPE_PORT": str(stripe_port),
                "DEMO_PRODUCT_PORT": str(free_port()),
                "FLYWHEEL_BENCH_MAKE_RUN": folder.name,  # how processes_of_run finds them
            }
        )
        url = f"http://127.0.0.1:{port}/"
        cpu_before = children_cpu_seconds()
        run = Run(folder, port, env)
        first_page = None
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if run.popen.poll() is not None:
                break
            try:
                answer = requests.get(url, timeout=5)
                if answer.status_code == 200:
                    first_page = time.monotonic() - run.start
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        stop_seconds, code = run.stop(args.stop_timeout)
        time.sleep(1)  # anything that only looked stopped has had its chance to go
        left = processes_of_run(marker)
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cpu = children_cpu_seconds() - cpu_before

        heading(f"Run {number}: make run in {folder} (PORT={port})")
        if first_page is None:
            print(f"  the landing page never answered 200 (make run exited with {run.popen.returncode}); its output:")
            for moment, line in run.lines[-40:]:
                print(f"  {moment:7.1f}  {line}")
            return {"first_page": None}
        marks = {step: run.when(f"==> {step}") for step in ("migrate", "start")}
        cpu_of = {
            match["step"]: match["cpu"]
            for _, line in run.lines
            if line.startswith("==> setup took")
            for match in SETUP_TIMES.finditer(line)
        }
        setup = {
            match["step"]: float(match["seconds"])
            for _, line in run.lines
            if line.startswith("==> setup took")
            for match in SETUP_TIMES.finditer(line)
        }
        print(f"  first page (200) after              {first_page:7.1f} s   target < {TARGET_SECONDS:.0f} s: "
              f"{'met' if first_page < TARGET_SECONDS else 'NOT MET'}")
        if marks["migrate"] is not None:
            print(f"    install (uv sync, nothing to do)  {marks['migrate']:7.1f} s")
        for step in ("migrate", "catalog_sync", "demo data"):
            if step in setup:
                cpu_note = f"   (CPU {cpu_of[step]} s)" if cpu_of.get(step) else ""
                print(f"    {step:<33} {setup[step]:7.1f} s{cpu_note}")
        if marks["migrate"] is not None and marks["start"] is not None:
            other = marks["start"] - marks["migrate"] - sum(setup.values())
            print(f"    setup process start-up and exit   {other:7.1f} s")
            print(f"    Procfile start to first page      {first_page - marks['start']:7.1f} s")
        else:
            print("    (no `==> step` lines: this commit's make run does not mark its steps)")
        print(f"  CPU time of the whole run           {cpu:7.1f} s  (make run's processes, start to stop)")
        print(f"  stopped (SIGINT to the group) in     {stop_seconds:7.1f} s, exit code {code}")
        if left:
            print(f"  STILL RUNNING after the stop ({len(left)}), killed now:")
            for pid, cmdline in left:
                print(f"    {pid} {cmdline[:120]}")
        else:
            print("  no process of the run left after the stop")
        if args.verbose:
            for moment, line in run.lines:
                print(f"  {moment:7.1f}  {line}")
        return {"first_page": first_page, "left": len(left)}
    finally:
        if args.keep:
            print(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD", help="the commit to export and run (HEAD)")
    parser.add_argument("--runs", type=int, default=1, help="fresh starts, one after the other (1)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the first page (300)")
    parser.add_argument("--stop-timeout", type=float, default=60, help="seconds to wait for make run to stop (60)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--verbose", action="store_true", help="print every line make run printed, stamped")
    args = parser.parse_args()
    if not (ROOT / ".venv").is_dir():
        raise SystemExit("No .venv in the checkout: run `make install` first (the target counts after it).")
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT, capture_output=True, text=True, check=True)
    heading("make run, from a fresh clone to the first page")
    print(f"  commit {rev.stdout.strip()}, {os.cpu_count()} CPU(s), load average at start: {load_average()}")
    print(f"  speed probe at start: {speed_probe():.1f} ms (a fixed pure-Python loop, best of 5)")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("  PYTHONDONTWRITEBYTECODE is set: every process compiles every module it imports")
    results = [one_run(args, number) for number in range(1, args.runs + 1)]
    times = [result["first_page"] for result in results if result["first_page"] is not None]
    if len(results) > 1 and times:
        heading("All runs")
        print(f"  first page after {', '.join(f'{value:.1f}' for value in times)} s; "
              f"best {min(times):.1f} s, target < {TARGET_SECONDS:.0f} s")
    print(f"  load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
