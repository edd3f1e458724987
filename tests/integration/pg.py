"""A throwaway PostgreSQL cluster for the feed tests: initdb into a temporary
directory, started on a free loopback port, run as the `postgres` user when
the tests run as root (PostgreSQL refuses to run as root). Never a mock."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SQL_DIR = os.path.join(ROOT, "deploy", "sql")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, logical=False, synchronous_commit=False, keep_dir=None):
        self.logical = logical  # wal_level = logical, for the logical-replication feed
        # Off by default (the tests' speed); a commit's WAL is then written up to
        # wal_writer_delay later, which delays logical decoding by as much.
        self.synchronous_commit = synchronous_commit
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bindir = os.path.dirname(bins[-1])
        # keep_dir: a cluster kept there across runs (a benchmark's filled
        # table); made there the first time, never removed by close().
        self.keep_dir = keep_dir
        self.tmp = keep_dir or tempfile.mkdtemp(prefix="vectord-pg-")
        os.makedirs(self.tmp, exist_ok=True)
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.reused = os.path.exists(os.path.join(self.data, "PG_VERSION"))
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.tmp, user="postgres", group="postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.user = pwd.getpwuid(os.geteuid()).pw_name if not self.as_user else "postgres"
        if not self.reused:
            self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=5"

    def _run(self, tool, *args):
        r = subprocess.run([*self.as_user, os.path.join(self.bindir, tool), *args],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} failed: {r.stdout}\n{r.stderr}")
        return r

    def start(self):
        opts = (f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c full_page_writes=off -c synchronous_commit={'on' if self.synchronous_commit else 'off'}")
        if self.logical:
            opts += " -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20"

        self._run("pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.tmp, "pg.log"), "-w", "start")

    def stop(self, mode="fast"):
        """mode "immediate" is a crash: no shutdown checkpoint, recovery at the next start."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def connect(self, autocommit=True):
        for _ in range(100):
            try:
                c = psycopg2.connect(self.dsn)
                c.autocommit = autocommit
                return c
            except psycopg2.OperationalError:
                time.sleep(0.1)
        raise RuntimeError("cannot connect to the test PostgreSQL")

    def apply_sql_files(self, conn):
        """deploy/sql/*.sql in name order, as `psql -f` would."""
        for path in sorted(glob.glob(os.path.join(SQL_DIR, "*.sql"))):
            with conn.cursor() as cur:
                cur.execute(open(path).read())

    def close(self):
        try:
            self.stop()
        finally:
            if not self.keep_dir:
                shutil.rmtree(self.tmp, ignore_errors=True)
