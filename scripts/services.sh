#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis the tests use answer; start them if installed but down.
set -euo pipefail
PGHOST=${PGHOST:-127.0.0.1}; PGPORT=${PGPORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}; REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null || (exec 3<>"/dev/tcp/$PGHOST/$PGPORT") 2>/dev/null; }
redis_up() { [ "$(printf 'PING\r\n' | timeout 2 bash -c "exec 3<>/dev/tcp/$REDIS_HOST/$REDIS_PORT; cat >&3; head -c 5 <&3" 2>/dev/null)" = "+PONG" ]; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { echo "ERROR: PostgreSQL does not answer on $PGHOST:$PGPORT and is not installed here. Install PostgreSQL (the tests use postgres://postgres@127.0.0.1:5432/test, trust auth) or set PGHOST/PGPORT and DATABASE_URL to a server you run." >&2; exit 1; }
fi
if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "Redis is down; starting it"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
    for _ in $(seq 30); do redis_up && break; sleep 1; done
  fi
  redis_up || { echo "ERROR: Redis does not answer on $REDIS_HOST:$REDIS_PORT and is not installed here. Install redis-server, or set REDIS_HOST/REDIS_PORT and REDIS_URL to a server you run." >&2; exit 1; }
fi
echo "PostgreSQL and Redis answer."
