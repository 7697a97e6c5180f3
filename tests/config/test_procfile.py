"""`make run`'s processes (the Procfile, run by scripts/procfile.py): Ctrl-C stops every one of
them (the demo product's too), every time; a worker that dies is started again; a second `make run` refuses to run
beside the first, and cleans up after one that was killed."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from ..conftest import ROOT, subprocess_env

# What `make run` runs after its setup (Makefile); the test runs it without make and uv.
LAUNCHER = [sys.executable, "scripts/procfile.py", "--first", "web"]


def _marked(marker: str) -> dict[int, str]:
    """pid -> command line of every process whose environment holds `marker`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


def _workers(marker: str) -> list[int]:
    """The Celery worker's main process (the one whose parent is not a worker)."""
    processes = _marked(marker)
    pids = [
        pid for pid, cmdline in processes.items()
        if "celery" in cmdline and " worker" in cmdline and "supervise.py" not in cmdline
    ]
    parents = {pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for pid in pids}
    return [pid for pid in pids if parents[pid] not in pids]


class MakeRun:
    """The Procfile's processes on the test database, with make run's embedded broker."""

    def __init__(self, var_dir: Path, marker: str) -> None:
        self.port = _free_port()
        self.product_port = _free_port()
        env = {key: value for key, value in subprocess_env().items() if key not in ("REDIS_URL", "CELERY_BROKER_URL")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "FLYWHEEL_ENV": "development",
                "FLYWHEEL_VAR_DIR": str(var_dir),
                "PORT": str(self.port),
                "LOCALSTRIPE_PORT": str(_free_port()),
                "DEMO_PRODUCT_PORT": str(self.product_port),
                "DEMO_PRODUCT_URL": f"http://127.0.0.1:{self.product_port}",
                "SITE_URL": f"http://127.0.0.1:{self.port}",
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                "FLYWHEEL_TEST_MARKER": marker,
            }
        )
        self.log = (var_dir / f"make-run-{uuid.uuid4().hex[:6]}.log").open("w+")
        self.process = subprocess.Popen(
            [*LAUNCHER, "--first-url", f"http://127.0.0.1:{self.port}/"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, marker: str) -> None:
        def up() -> bool:
            assert self.process.poll() is None, self.output()[-3000:]
            try:
                page = requests.get(f"http://127.0.0.1:{self.port}/", timeout=5).status_code == 200
            except requests.RequestException:
                return False
            return page and "ready." in self.output() and bool(_workers(marker))

        _wait(up, 180, "the first page and a ready worker")

    def product_answers(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.product_port}/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def interrupt(self) -> int:
        """Ctrl-C in a terminal: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(90)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def marker():
    marker = f"make-run-test-{uuid.uuid4().hex}"
    yield marker
    for pid in _marked(marker):  # whatever a failed test left behind
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_ctrl_c_stops_every_process_twice_in_a_row_and_a_dead_worker_is_started_again(
    transactional_db, catalog, tmp_path, marker
):
    for attempt in (1, 2):
        run = MakeRun(tmp_path, marker)
        run.wait_ready(marker)

        if attempt == 1:
            # A second make run beside this one refuses, and disturbs nothing.
            second = MakeRun(tmp_path, marker)
            assert second.process.wait(60) != 0
            assert "make run is already running" in second.output()

            # The worker dies: it is started again, and the rest keeps running.
            (dead,) = _workers(marker)
            os.kill(dead, signal.SIGKILL)
            _wait(lambda run=run: run.output().count(" ready.") >= 2, 180, "the worker started again and ready")
            assert "starting it again" in run.output()
            assert [pid for pid in _workers(marker) if pid != dead]
            assert requests.get(f"http://127.0.0.1:{run.port}/", timeout=10).status_code == 200
            # The demo product runs beside Flywheel, on its own port (its own origin).
            _wait(lambda run=run: run.product_answers(), 60, "the demo product's first page")

        assert run.interrupt() == 0, run.output()[-3000:]
        assert "Warm shutdown" in run.output()
        assert _marked(marker) == {}, f"still running after Ctrl-C (attempt {attempt}): {_marked(marker)}"
        assert not (tmp_path / "procfile.pid").exists()


def test_a_make_run_killed_outright_leaves_nothing_behind_for_long(transactional_db, catalog, tmp_path, marker):
    run = MakeRun(tmp_path, marker)
    run.wait_ready(marker)
    os.kill(run.process.pid, signal.SIGKILL)  # the runner alone, as an OOM killer or `kill -9` would
    run.process.wait(10)

    # The worker, beat and localstripe notice and stop by themselves: nothing reads the queue.
    _wait(lambda: not _workers(marker), 90, "the orphaned worker to stop")
    # The next make run stops whatever is left (runserver's reloader child) before it starts.
    again = MakeRun(tmp_path, marker)
    again.wait_ready(marker)
    assert again.interrupt() == 0
    assert _marked(marker) == {}


def test_make_run_stops_what_an_earlier_one_left_running_before_it_starts(transactional_db, catalog, tmp_path, marker):
    env = {**os.environ, "FLYWHEEL_TEST_MARKER": marker}
    orphan = subprocess.Popen(  # a process of this project left by a runner that is gone
        [sys.executable, "-c", "import time; time.sleep(600)"], cwd=ROOT, env=env, start_new_session=True
    )
    (tmp_path / "procfile.pid").write_text(f'{{"runner": 999999999, "groups": [{orphan.pid}]}}')

    run = MakeRun(tmp_path, marker)
    run.wait_ready(marker)
    assert orphan.wait(30) is not None
    assert "stopping 1 process(es) left over by an earlier make run" in run.output()
    assert run.interrupt() == 0
    assert _marked(marker) == {}
