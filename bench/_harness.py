"""What the benches share: figures, ports, the bench databases, manage.py, child processes.

Imported by the scripts in bench/ as `from _harness import ...` (a script's own directory is
on sys.path when it runs as `python bench/<name>.py`). Only what is the same in every bench
lives here; each bench keeps its own settings, workloads and figures.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


# Figures and output -------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lower = int(k)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (k - lower)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def heading(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


def load_average() -> str:
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def tool_ensure(command: str, package: str | None = None) -> str | None:
    """The path of `command`, installing Debian's `package` (default: the command's name) with
    apt-get when it is missing, through sudo when not root (as scripts/browser.sh installs
    Chromium); None when it cannot be installed, after saying why, so that the bench can fall
    back to what it has."""
    found = shutil.which(command)
    if found:
        return found
    package = package or command
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        print(f"  {command} is missing and there is no apt-get to install {package} with")
        return None
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            print(f"  {command} is missing, and installing {package} needs root or sudo")
            return None
        prefix = [sudo, "-n"]  # never wait for a password the bench cannot type
    print(f"  {command} is missing; installing Debian's {package} package with apt-get")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([*prefix, apt_get, "update", "-qq"], [*prefix, apt_get, "install", "-y", "-qq", package]):
        result = subprocess.run(argv, env=apt_env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            print(f"  could not install {package}: {(result.stderr or result.stdout).strip()[-300:]}")
            return None
    return shutil.which(command)


# The bench databases ------------------------------------------------------------------------


def maintenance_connection() -> psycopg.Connection:
    last: Exception | None = None
    for dbname in ("postgres", "test"):
        try:
            return psycopg.connect(**PG, dbname=dbname, autocommit=True)
        except psycopg.OperationalError as error:
            last = error
    raise SystemExit(f"Cannot reach PostgreSQL at {PG['host']}:{PG['port']}: {last}")


def database_recreate(name: str) -> None:
    with maintenance_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def database_drop(name: str) -> None:
    with maintenance_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> str:
    """Run `manage.py *args` from the project root with `env`; return what it printed."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def redis_keys_delete(url: str, marker: str) -> None:
    """Delete the keys of the Redis database at `url` whose names hold `marker` (the run's
    queue name or cache key prefix); if Redis cannot be reached, say so and go on."""
    try:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"*{marker}*"))
        if keys:
            client.delete(*keys)
    except redis.RedisError as error:
        print(f"  (could not clean Redis keys of {marker}: {error})")


def web_server_env(*, db_name: str, redis_url: str, prefix: str, site_url: str, scratch: Path) -> dict[str, str]:
    """The environment of a bench's web server (and its other processes): this machine's
    environment without outside services, config.settings with DEBUG off, the bench's own
    database, its Redis database with the run's queue and cache prefix, mail and var under
    `scratch`. A bench adds its own settings to it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CACHE_URL", "CELERY_BROKER_URL", "POSTHOG_API_KEY", "EMAIL_HOST")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "FLYWHEEL_ENV": "development",
            "DEBUG": "0",
            "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{db_name}",
            "REDIS_URL": redis_url,
            "CELERY_QUEUE": prefix,
            "CACHE_KEY_PREFIX": prefix,
            "SITE_URL": site_url,
            "MAIL_DIR": str(scratch / "mail"),
            "FLYWHEEL_VAR_DIR": str(scratch / "var"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def bench_cleanup(*, web: Process | None, show_log: bool, redis_url: str, prefix: str, db_name: str, keep_db: bool, scratch: Path) -> None:
    """What a bench leaves behind, removed: the web server stopped (its log's tail printed when
    `show_log`), the run's Redis keys, the database (unless `keep_db`), the scratch folder."""
    if web is not None:
        web.stop()
        if show_log:
            print(f"\n--- last lines of the web log ---\n{web.log_tail(30)}")
    redis_keys_delete(redis_url, prefix)
    if keep_db:
        print(f"\n  kept database {db_name}")
    else:
        try:
            database_drop(db_name)
        except psycopg.Error as error:
            print(f"  (could not drop {db_name}: {error})")
    shutil.rmtree(scratch, ignore_errors=True)


# Child processes ----------------------------------------------------------------------------


class Process:
    """A child process in its own process group, its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(10)
        self._log.close()


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.05, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for process in processes:
            if not process.alive():
                raise RuntimeError(
                    f"{process.name} exited while waiting for {what}:\n{process.log_tail()}"
                )
        time.sleep(interval)
    raise RuntimeError(f"Timed out after {timeout:.0f}s waiting for {what}")


def gunicorn_argv(
    port: int,
    workers: int,
    access_log: Path,
    *,
    worker_class: str | None = None,
    timeout: int | None = None,
    threads: int | None = None,
) -> list[str]:
    """gunicorn serving config.wsgi on 127.0.0.1:`port`, each request in `access_log` as
    "<method> <path> <status> <microseconds>" (read it with access_log_requests)."""
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi"]
    if worker_class is not None:
        argv += ["-k", worker_class]
    argv += ["-w", str(workers), "-b", f"127.0.0.1:{port}"]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    argv += ["--access-logfile", str(access_log), "--access-logformat", "%(m)s %(U)s %(s)s %(D)s"]
    if threads is not None:
        argv += ["--threads", str(threads)]
    return argv


def granian_argv(
    port: int,
    workers: int,
    access_log: Path,
    *,
    blocking_threads: int | None = None,
    log_config: Path,
) -> list[str]:
    """granian (WSGI) serving config.wsgi on 127.0.0.1:`port`, as docs/deployment.md runs it,
    each request in `access_log` as "<method> <path> <status> <milliseconds>".

    granian's access logger writes through Python's logging, so a small dictConfig file (written
    to `log_config`) sends it to `access_log`, appended (O_APPEND, as gunicorn's): emptying the
    file between phases leaves the earlier phase out.
    """
    log_config.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"plain": {"format": "%(message)s"}},
                "handlers": {
                    "console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"},
                    "access": {"class": "logging.FileHandler", "formatter": "plain", "filename": str(access_log), "mode": "a"},
                },
                "loggers": {
                    "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
                    "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
                },
            }
        )
    )
    argv = [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers), "--runtime-mode", "st", "--no-ws"]
    if blocking_threads is not None:
        argv += ["--blocking-threads", str(blocking_threads)]
    argv += ["--log-config", str(log_config), "--access-log"]
    argv += ["--access-log-fmt", "%(method)s %(path)s %(status)d %(dt_ms).3f", "config.wsgi:application"]
    return argv


def access_log_requests(access_log: Path, server: str) -> list[tuple[str, str, str, float]]:
    """(method, path, status, seconds) of each request in an access log written by
    gunicorn_argv (microseconds) or granian_argv (milliseconds), in order; lines of any other
    shape are skipped, and a log that is not there holds nothing."""
    try:
        lines = access_log.read_text().splitlines()
    except OSError:
        return []
    unit = 1e6 if server == "gunicorn" else 1e3
    requests = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4:
            continue
        try:
            value = float(parts[3])
        except ValueError:
            continue
        requests.append((parts[0], parts[1], parts[2], value / unit))
    return requests


def celery_worker_argv(concurrency: int, *, nice: int = 0) -> list[str]:
    """A Celery worker for config, `concurrency` threads, without gossip, mingle or heartbeat;
    `nice` > 0 runs it at that lower CPU priority (nice(1) execs it: the pid stays the same)."""
    return [
        *(["nice", "-n", str(nice)] if nice else []),
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel=INFO",
        "--pool=threads",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


# Load against a web server (bench/entitlements.py's method) ------------------------------


@dataclass
class Endpoint:
    """A GET the load generator sends: its path, headers, and `check(body) -> bool`."""

    label: str
    path: str
    headers: dict[str, str]
    check: object  # callable(bytes) -> bool


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def one_request(port: int, endpoint: Endpoint) -> tuple[bool, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", endpoint.path, headers=endpoint.headers)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return False, f"{type(error).__name__}: {error}"
    finally:
        connection.close()
    if response.status != 200:
        return False, f"HTTP {response.status}: {body[:120]!r}"
    if not endpoint.check(body):
        return False, f"unexpected body {body[:120]!r}"
    return True, ""


def closed_loop(port: int, endpoint: Endpoint, clients: int, duration: float) -> Sample:
    """`clients` threads, each sending its next request as soon as the last one is answered."""
    sample = Sample()
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client() -> None:
        latencies, failures = [], []
        start_gate.wait()
        while True:
            started = time.perf_counter()
            if started >= deadline[0]:
                break
            ok, error = one_request(port, endpoint)
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                failures.append(error)
        with lock:
            sample.latencies.extend(latencies)
            sample.failures.extend(failures)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    start_gate.wait()
    for thread in threads:
        thread.join()
    sample.elapsed = time.perf_counter() - began
    return sample


def open_loop(port: int, endpoint: Endpoint, clients: int, rate: float, duration: float) -> Sample:
    """Requests due at a fixed total `rate`, spread over `clients` threads; each latency runs
    from when its request was due."""
    sample = Sample()
    lock = threading.Lock()
    interval = clients / rate
    start_gate = threading.Barrier(clients + 1)
    origin = [0.0]

    def client(index: int) -> None:
        latencies, failures = [], []
        start_gate.wait()
        due = origin[0] + index * interval / clients
        end = origin[0] + duration
        while due < end:
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            ok, error = one_request(port, endpoint)
            if ok:
                latencies.append(time.perf_counter() - due)
            else:
                failures.append(error)
            due += interval
        with lock:
            sample.latencies.extend(latencies)
            sample.failures.extend(failures)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    origin[0] = time.perf_counter() + 0.05
    start_gate.wait()
    for thread in threads:
        thread.join()
    sample.elapsed = duration
    return sample


def merge(samples: list[Sample]) -> Sample:
    merged = Sample()
    for sample in samples:
        merged.latencies.extend(sample.latencies)
        merged.failures.extend(sample.failures)
        merged.elapsed += sample.elapsed
    return merged


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def server_times(access_log: Path) -> dict[str, list[float]]:
    """Seconds gunicorn spent per request answered 200 (%(D)s, microseconds), by path."""
    found: dict[str, list[float]] = {}
    for _, path, status, seconds in access_log_requests(access_log, "gunicorn"):
        if status == "200":
            found.setdefault(path, []).append(seconds)
    return found
