"""The store-postgres section of bench.py: the PostgreSQL store beside the SQLite store (issue 13).

In one run, taking turns, the same commands on a SQLite store and on a PostgreSQL store:

    push      the 20,000-file tree into an empty environment (a new store or database each run)
    import    the tree's gzip archive into an empty environment
    export    the head of a 20,000-file environment, no compression, to tmpfs
    versions  `versions --limit 50` of an app with 100,000 versions
    diff      `diff` of two heads of that app: the 20,000-file tree and it with one file changed

push, import and export are judged on PostgreSQL's time over SQLite's (goal ≤ 1.5x); versions and
diff on PostgreSQL's own time (goal < 50 ms), shown with `confvault --version` as the cost of
starting the process.

The PostgreSQL server is a throwaway cluster made for the run: `initdb` in a temporary folder of
the work folder (as `nobody` through setpriv when run as root, since PostgreSQL refuses root),
trust authentication on 127.0.0.1 only, a free port, PostgreSQL's default durability (fsync and
synchronous commit on, as the SQLite store commits with `synchronous = FULL`). It is stopped and
removed at the end of the section, also when a command fails or on Ctrl-C or SIGTERM; a watchdog
does it if this process is killed. Each store is a database of its own (`createdb`), reached as
`postgres://confvault@127.0.0.1:PORT/NAME`.

The 100,000-version stores are built as bench.py's store-versions builds its SQLite store, in
both engines: a push of the tree, copies of version 1's row written straight into the database (by
SQL through psql for PostgreSQL), then a push of the changed tree to production; `check` passes on
both. (`confvault store copy` from the SQLite store would do it too, but copies some 110 versions
of 2,000 files a second in a release build: 100,000 would take about 15 minutes.)
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

# bench.py imports this module while it runs as the script: its helpers and types are those of
# `__main__`, not of a second copy of bench.py imported under its own name.
bench = sys.modules.get("bench") or sys.modules["__main__"]

SECTION = "store-postgres"
ROLE = "confvault"  # the superuser, as in Tests/ConfvaultTestSupport/PostgresCluster.swift
STORE_GOAL_RATIO = 1.5  # push, import and export: PostgreSQL's time over SQLite's
POSTGRES_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT = 120  # seconds pg_ctl may take to start or stop the server


def postgres_binaries() -> Path:
    """The newest PostgreSQL's programs: Debian keeps them in /usr/lib/postgresql/VERSION/bin."""
    versions = sorted((int(path.name) for path in POSTGRES_ROOT.glob("*") if path.name.isdigit()),
                      reverse=True)
    for version in versions:
        folder = POSTGRES_ROOT / str(version) / "bin"
        if os.access(folder / "initdb", os.X_OK):
            return folder
    raise bench.Unexpected(f"PostgreSQL is not installed (no {POSTGRES_ROOT}/VERSION/bin/initdb):"
                           " run `make setup`, which installs Debian's postgresql")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A throwaway PostgreSQL server in `folder`, listening on 127.0.0.1:`port`."""

    def __init__(self, parent: Path):
        self.binaries = postgres_binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="postgres-", dir=parent))
        self.port = free_port()
        self.owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        if self.owner:
            os.chown(self.folder, self.owner.pw_uid, self.owner.pw_gid)
        self.databases = 0

    def as_owner(self, program: str, *args: str) -> list[str]:
        """A PostgreSQL program run as the cluster's owner (`nobody` when this runs as root)."""
        argv = [str(self.binaries / program), *args]
        if not self.owner:
            return argv
        return ["setpriv", f"--reuid={self.owner.pw_uid}", f"--regid={self.owner.pw_gid}",
                "--clear-groups", *argv]

    def run(self, argv: list[str]) -> None:
        """Runs a program with its output in a file (pg_ctl's server inherits it: no pipe),
        raising CommandFailed with that output if it fails."""
        log = self.folder / "commands.out"
        with open(log, "ab") as out:
            try:
                status = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                        timeout=START_TIMEOUT, check=False).returncode
            except subprocess.TimeoutExpired:
                raise bench.TimedOut(argv, START_TIMEOUT) from None
        if status != 0:
            server_log = self.folder / "server.log"
            shown = bench.tail(log) + (bench.tail(server_log) if server_log.exists() else "")
            raise bench.CommandFailed(argv, status, shown)

    def start(self) -> None:
        data = self.folder / "data"
        self.run(self.as_owner("initdb", "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8",
                               "--no-locale", "--no-sync"))
        (data / "pg_hba.conf").write_text("local all all trust\n"
                                          "host all all 127.0.0.1/32 trust\n")
        self.watch()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
                   " -c max_connections=100")
        self.run(self.as_owner("pg_ctl", "start", "-D", str(data), "-w", "-t",
                               str(START_TIMEOUT), "-l", str(self.folder / "server.log"),
                               "-o", options))

    def watch(self) -> None:
        """Starts a shell loop in a session of its own that stops the server and removes the
        folder once this process is gone, should it be killed before `remove` runs."""
        stop = " ".join(f"'{part}'" for part in self.as_owner(
            "pg_ctl", "stop", "-D", str(self.folder / "data"), "-m", "immediate"))
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done\n"
                  f"{stop} >/dev/null 2>&1\nrm -rf '{self.folder}'\n")
        subprocess.run(["setsid", "-f", "sh", "-c", script], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def remove(self) -> None:
        """Stops the server at once and removes its folder."""
        if (self.folder / "data" / "postmaster.pid").exists():
            try:
                self.run(self.as_owner("pg_ctl", "stop", "-D", str(self.folder / "data"),
                                       "-m", "immediate", "-w"))
            except (bench.CommandFailed, bench.TimedOut) as error:
                bench.progress(f"  could not stop PostgreSQL in {self.folder}: {error}")
        shutil.rmtree(self.folder, ignore_errors=True)

    def client(self, program: str, *args: str) -> list[str]:
        """A client program (createdb, dropdb, psql) connecting over TCP as the superuser."""
        return [str(self.binaries / program), "-h", "127.0.0.1", "-p", str(self.port),
                "-U", ROLE, *args]

    def new_database(self) -> str:
        """A new, empty database; returns its store URL."""
        self.databases += 1
        name = f"bench_{self.databases}"
        self.run(self.client("createdb", name))
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgres://{ROLE}@127.0.0.1:{self.port}/{name}"

    def drop(self, url: str) -> None:
        self.run(self.client("dropdb", "--force", url.rsplit("/", 1)[1]))

    def psql(self, database: str, sql: str) -> str:
        """Runs SQL in one transaction; returns what it prints, unaligned, without headers."""
        argv = self.client("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "--single-transaction", "-d", database, "-f", "-")
        result = subprocess.run(argv, input=sql, capture_output=True, text=True,
                                timeout=bench.COMMAND_TIMEOUT, check=False)
        if result.returncode != 0:
            raise bench.CommandFailed(argv, result.returncode, result.stderr)
        return result.stdout

    def version(self) -> str:
        return bench.output([str(self.binaries / "postgres"), "--version"]).strip()


@contextmanager
def cluster(parent: Path) -> Iterator[Cluster]:
    """A started cluster, stopped and removed when the block ends, however it ends."""
    made = Cluster(parent)
    try:
        made.start()
        yield made
    finally:
        made.remove()


@dataclass(frozen=True)
class FreshDatabase:
    """Like bench.FreshRun, on PostgreSQL: a command run on a new database, prepared untimed
    (`prepare` gets its URL), dropped after."""

    cluster: Cluster
    argv: Callable[[str], list[str]]
    prepare: Callable[[str], None] = lambda url: None

    def once(self) -> bench.Run:
        url = self.cluster.new_database()
        try:
            self.prepare(url)
            return bench.run_once(self.argv(url), bench.COMMAND_TIMEOUT)
        finally:
            self.cluster.drop(url)


def check(settings: bench.Settings, store: Path | str) -> str:
    """`confvault check` of a store, which must report OK."""
    report = bench.output(bench.store_command(settings, store, "check"),
                          timeout=bench.COMMAND_TIMEOUT).strip()
    if not report.startswith("OK"):
        raise bench.Unexpected(f"confvault check of {store}: {report}")
    return report


def copy_first_version(postgres: Cluster, url: str, last: int) -> None:
    """bench.copy_first_version on PostgreSQL: copies the bench app's version 1 as versions 2 to
    `last` (each the parent of the next, a second apart) in one transaction, and makes `last` the
    head of its environment."""
    database = url.rsplit("/", 1)[1]
    columns = postgres.psql(database, "SELECT column_name FROM information_schema.columns"
                            " WHERE table_schema = current_schema() AND table_name = 'version'"
                            " ORDER BY ordinal_position").split()
    copied = {"number": "g", "parent": "g - 1", "created_at": "v.created_at + g"}
    first = (f"v.app_id = (SELECT id FROM app WHERE name = '{bench.STORE_APP}')"
             " AND v.number = 1")
    postgres.psql(database, f"""
        INSERT INTO version ({", ".join(columns)})
          SELECT {", ".join(copied.get(column, "v." + column) for column in columns)}
          FROM version v, generate_series(2, {last}) AS g WHERE {first};
        UPDATE app SET next_version = {last + 1} WHERE name = '{bench.STORE_APP}';
        UPDATE head SET version = {last} WHERE environment_id = (
          SELECT e.id FROM environment e, version v
          WHERE e.app_id = v.app_id AND e.name = v.environment AND {first});
        """)


def build_stores(settings: bench.Settings, postgres: Cluster, tree: bench.Tree, count: int,
                 work: Path) -> tuple[Path, str, dict[str, float]]:
    """A SQLite store and a PostgreSQL store of `count` versions each: versions 1 to count - 1
    in staging, each the tree; version `count` in production, the tree with one value changed.
    Returns both and how long each step took."""
    store, folder = work / "versions-store", work / tree.name
    shutil.copytree(tree.path, folder)
    bench.change_value(bench.spread_json_files(folder, 1)[0])
    took = {}
    for label, where in (("SQLite", store), ("PostgreSQL", None)):
        started = time.monotonic()
        where = where or postgres.new_database()
        bench.init_store(settings, where)
        bench.run_once(bench.push_command(settings, where, tree.path, bench.STAGING),
                       timeout=bench.COMMAND_TIMEOUT)
        pushed = time.monotonic()
        if label == "SQLite":
            bench.copy_first_version(store / bench.STORE_DATABASE, count - 1)
        else:
            url = where
            copy_first_version(postgres, url, count - 1)
        copied = time.monotonic()
        bench.run_once(bench.push_command(settings, where, folder, bench.PRODUCTION),
                       timeout=bench.COMMAND_TIMEOUT)
        bench.expect_newest(settings, where, count)
        took[f"{label}: init and push of {tree.name}"] = pushed - started
        took[f"{label}: {count - 2:,} copies of version 1"] = copied - pushed
        took[f"{label}: push of the changed tree"] = time.monotonic() - copied
    shutil.rmtree(folder)
    for label, checked in (("SQLite", store), ("PostgreSQL", url)):
        started = time.monotonic()
        print(f"  confvault check, {label}: {check(settings, checked)}")
        took[f"{label}: confvault check"] = time.monotonic() - started
    return store, url, took


def query_row(key: str, work: str, postgres: bench.Timing, sqlite: bench.Timing,
              start: bench.Timing, goal_ms: float) -> bench.Row:
    """A row of PostgreSQL's milliseconds, judged on the median against `goal_ms`, with SQLite's
    and the process start's shown for reference."""
    def shown(timing: bench.Timing) -> str:
        return f"{bench.milliseconds(timing.best)} / {bench.milliseconds(timing.median)} ms"
    return bench.Row(
        key, work, shown(postgres),
        f"SQLite {shown(sqlite)}; process start (`--version`) {shown(start)}",
        f"{postgres.best / sqlite.best:.2f} / {postgres.median / sqlite.median:.2f}x of SQLite",
        f"< {goal_ms:g} ms", postgres.median * 1000 < goal_ms)


def time_store_work(settings: bench.Settings, postgres: Cluster, tree: bench.Tree,
                    versions_store: Path, versions_url: str) -> list[bench.Row]:
    """Push, import and export, SQLite and PostgreSQL in turns."""
    settings.archives.mkdir(parents=True, exist_ok=True)
    archive = settings.archives / f"{tree.name}-postgres-import.tar.gz"
    bench.run_once([settings.confvault, "pack", str(tree.path), "-o", str(archive),
                    "--compression", "gzip", "--app", bench.STORE_APP, "--force"])
    stores = bench.section_folder(settings, "postgres-import")
    prepare = partial(bench.init_store, settings)
    work = {
        "push": (lambda store: bench.push_command(settings, store, tree.path, bench.STAGING)),
        "import": (lambda store: bench.import_command(settings, store, archive, bench.STAGING)),
    }
    commands = []
    for make in work.values():
        commands.append(bench.FreshRun(stores, make, prepare))
        commands.append(FreshDatabase(postgres, make, prepare))
    with tempfile.TemporaryDirectory(prefix="confvault-bench-", dir=bench.TMPFS) as outputs:
        def export(store: Path | str, name: str) -> list[str]:
            return bench.store_command(settings, store, "export", "--app", bench.STORE_APP,
                                       "--env", bench.STAGING, "-o", f"{outputs}/{name}.tar",
                                       "--compression", "none", "--force")
        commands.append(bench.FreshRun(stores, lambda _: export(versions_store, "sqlite")))
        commands.append(bench.FreshRun(stores, lambda _: export(versions_url, "postgres")))
        bench.progress(f"  push, import and export of {tree.name}, SQLite and PostgreSQL in turns")
        measured = bench.measure_fresh(settings, commands)
    rows, table = [], []
    what = {
        "push": f"`push` {tree.files:,} files into an empty environment",
        "import": f"`import` of its gzip archive ({bench.mib(archive.stat().st_size)})",
        "export": f"`export` of a {tree.files:,}-file head, no compression",
    }
    for index, operation in enumerate(what):
        sqlite, postgres_time = measured[2 * index], measured[2 * index + 1]
        row = bench.time_row(f"postgres-{operation}-{tree.files // 1000}k",
                             f"PostgreSQL store: {what[operation]}", postgres_time, sqlite,
                             "SQLite store", STORE_GOAL_RATIO)
        rows.append(row)
        table.append([operation, bench.seconds_text(sqlite), bench.seconds_text(postgres_time),
                      row.ratio, f"{postgres_time.rss_mib:.1f} MiB", row.verdict])
    bench.print_table(["operation", "SQLite min / median", "PostgreSQL min / median",
                       "ratio", "PostgreSQL RSS", f"≤ {STORE_GOAL_RATIO:g}x"], table)
    return rows


def time_queries(settings: bench.Settings, tree: bench.Tree, count: int, store: Path, url: str
                 ) -> list[bench.Result]:
    """`versions --limit 50` and `diff` of two heads, SQLite and PostgreSQL in turns, with
    `--version` as the cost of starting the process."""
    def versions(where: Path | str) -> list[str]:
        return bench.store_command(settings, where, "versions", "--app", bench.STORE_APP,
                                   "--limit", "50")

    def diff(where: Path | str) -> list[str]:
        return bench.store_command(settings, where, "diff", "--app", bench.STORE_APP,
                                   "--env", bench.STAGING, "--env", bench.PRODUCTION)

    for where in (store, url):
        shown = bench.output([*diff(where), "--stat"]).strip().splitlines()[-1].strip()
        listed = len(bench.output(versions(where)).strip().splitlines())
        print(f"  {where}: diff --stat: {shown}; versions --limit 50: {listed} lines")
    commands = [[settings.confvault, "--version"], versions(store), versions(url), diff(store),
                diff(url)]
    runs = max(settings.repeat, bench.QUERY_RUNS)
    bench.progress(f"  versions and diff, SQLite and PostgreSQL in turns, {runs} runs")
    timings = time_turns(commands, runs)
    start, sqlite_versions, postgres_versions, sqlite_diff, postgres_diff = timings
    bench.print_table(["command", "SQLite min / median ms", "PostgreSQL min / median ms"], [
        ["--version (process start)", f"{bench.milliseconds(start.best)} /"
         f" {bench.milliseconds(start.median)}", ""],
        *[[label, f"{bench.milliseconds(s.best)} / {bench.milliseconds(s.median)}",
           f"{bench.milliseconds(p.best)} / {bench.milliseconds(p.median)}"]
          for label, s, p in (("versions --limit 50", sqlite_versions, postgres_versions),
                              ("diff", sqlite_diff, postgres_diff))]])
    where = f"{count:,} versions"
    return [
        bench.Figure("versions", f"versions --limit 50, PostgreSQL, {where}",
                     postgres_versions.best),
        bench.Figure("diff", f"diff, PostgreSQL, {tree.name} heads of {where}",
                     postgres_diff.best),
        query_row(f"postgres-versions-{count // 1000}k",
                  f"PostgreSQL store: `versions --limit 50`, {where}", postgres_versions,
                  sqlite_versions, start, bench.VERSIONS_GOAL_MS),
        query_row(f"postgres-diff-{count // 1000}k",
                  f"PostgreSQL store: `diff` of two {tree.files:,}-file heads (one file"
                  f" changed), {where}", postgres_diff, sqlite_diff, start, bench.DIFF_GOAL_MS),
    ]


def time_turns(commands: list[list[str]], runs: int) -> list[bench.Timing]:
    """One untimed warm-up of each command, then `runs` rounds taking turns."""
    for argv in commands:
        bench.run_once(argv, bench.COMMAND_TIMEOUT)
    measured: list[list[bench.Run]] = [[] for _ in commands]
    for _ in range(runs):
        for argv, command_runs in zip(commands, measured):
            command_runs.append(bench.run_once(argv, bench.COMMAND_TIMEOUT))
    return [bench.Timing.of(command_runs) for command_runs in measured]


def postgres_store(settings: bench.Settings) -> list[bench.Result]:
    """The section: see this module's description."""
    tree = bench.prepare_tree(settings, bench.TREE_20K.scaled(settings.scale))
    count = bench.VERSIONS // settings.scale
    work = bench.section_folder(settings, "postgres")
    os.chmod(work, 0o755)  # the cluster's owner goes through it to its folder
    with cluster(work) as postgres:
        print(f"\n{SECTION}: {tree.name}, {tree.files} files, {tree.bytes / bench.MIB:.1f} MiB;"
              f" {count:,} versions; {postgres.version()} on 127.0.0.1:{postgres.port};"
              f" its data and the SQLite stores on {bench.file_system_of(work)}")
        bench.progress(f"  the {count:,}-version stores")
        store, url, took = build_stores(settings, postgres, tree, count, work)
        bench.print_table(["building the stores", "seconds"],
                          [[label, f"{seconds:.1f}"] for label, seconds in took.items()])
        rows = time_store_work(settings, postgres, tree, store, url)
        results = [*rows, *time_queries(settings, tree, count, store, url)]
    bench.print_rows([r for r in results if isinstance(r, bench.Row)])
    return results
