#!/usr/bin/env bash
# Makes sure the PostgreSQL server the storage tests use is up. The tests
# never skip themselves without it: this starts the machine's local cluster
# when it is installed but stopped, and otherwise fails with what to do.
set -euo pipefail
url=${QUIVER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

ready() { psql "$url" -Atqc 'select 1' >/dev/null 2>&1; }

if ready; then exit 0; fi

if [ -z "${QUIVER_TEST_POSTGRES_URL:-}" ] && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "postgres: starting the local cluster $version/main" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
fi

cat >&2 <<MSG
postgres: PostgreSQL is not reachable at $url.
The storage tests run on SQLite and on PostgreSQL and do not skip the latter.
Start a server with trust auth and a database named test on 127.0.0.1:5432,
or set QUIVER_TEST_POSTGRES_URL to one you have.
MSG
exit 1
