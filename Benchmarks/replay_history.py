#!/usr/bin/env python3
"""Writes the replay fixture: a configuration repository's history, generated, as a git bundle.

The history is of this project's own making, not copied from anyone: a platform team's
repository of Kubernetes-like manifests per service and environment (YAML), application settings
(INI, JSON, YAML), dashboards and alert rules, and one large flat folder, `catalog/services/`, of
about 700 JSON entries. It has COMMITS commits and ends with about 5,300 files. Most commits change
one to three files (an image tag, a replica count, a setting, a catalog entry); some add or remove
a service (a few dozen files), rename a dashboard or move a service to another team, and a few are
large refactors (a label added to every deployment, every alert rule rewritten).

Everything comes from one seeded random generator, and commit dates, names and messages are fixed,
so the same script writes the same commits (the same commit ids) on every machine:

    python3 Benchmarks/replay_history.py Benchmarks/Fixtures/replay-history.bundle
    python3 Benchmarks/replay_history.py --check Benchmarks/Fixtures/replay-history.bundle

`--check` generates the history again and compares its head commit with the bundle's.
bench.py's `replay` section replays the bundle one `confvault push` per commit.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

COMMITS = 500
SEED = "confvault/replay-history/v1"
START = 1_700_000_000  # the first commit's date (2023-11-14); each next is 1 to 40 hours later
ENVIRONMENTS = ("dev", "staging", "prod")
CATALOG = "catalog/services"

WORDS = """
account action address alert amount api archive audit auth backend balance batch billing cache
calendar catalog checkout client config consumer contract coupon credit customer dashboard delivery
discount document edge email event export feature feed gateway geo graph identity image import
index inventory invoice ledger license locale location mailer media metrics notify order partner
payment pipeline policy portal pricing profile quote rating receipt refund report search session
shipping signup stock storage subscription supplier support tax tenant ticket token tracking
transfer upload user vendor wallet warehouse webhook worker
""".split()
TEAMS = ("core", "payments", "growth", "platform", "data", "search", "fulfilment", "identity")
REGISTRY = "registry.example.com"


# --------------------------------------------------------------------------------------------
# Rendering


def scalar(value: object) -> str:
    """A YAML scalar: plain for simple lowercase words and numbers, otherwise JSON's quoting."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text and all(c.isalnum() or c in "-_./" for c in text) and not text[0].isdigit() \
            and text not in ("true", "false", "null", "yes", "no", "on", "off"):
        return text
    return json.dumps(text)


def yaml_lines(value: object, depth: int = 0) -> list[str]:
    pad = "  " * depth
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines += yaml_lines(item, depth + 1)
            elif isinstance(item, (dict, list)):
                lines.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict) and item:
                first, *rest = yaml_lines(item, depth + 1)
                lines.append(f"{pad}- {first.lstrip()}")
                lines += rest
            else:
                lines.append(f"{pad}- {scalar(item)}")
    return lines


def render(path: str, document: object) -> bytes:
    """The document in the format its name says: YAML (several documents for a list under
    `---`), JSON, or INI (a dict of sections of scalars)."""
    if path.endswith(".json"):
        return (json.dumps(document, indent=2) + "\n").encode()
    if path.endswith(".ini"):
        out = []
        for section, values in document.items():
            out.append(f"[{section}]")
            out += [f"{key} = {scalar(value)}" for key, value in values.items()]
            out.append("")
        return "\n".join(out).encode()
    if isinstance(document, list):
        return "".join("---\n" + "\n".join(yaml_lines(part)) + "\n" for part in document).encode()
    return ("\n".join(yaml_lines(document)) + "\n").encode()


# --------------------------------------------------------------------------------------------
# The repository's documents


class Repository:
    """The files of the repository as documents, and the changes that make its history."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.files: dict[str, object] = {}
        self.services: dict[str, str] = {}  # service name -> team
        self.tags: dict[str, list[int]] = {}  # service -> image version
        self.changed: set[str] = set()
        self.deleted: set[str] = set()
        self.renamed: list[tuple[str, str]] = []

    # Writing

    def put(self, path: str, document: object) -> None:
        self.files[path] = document
        self.changed.add(path)
        self.deleted.discard(path)

    def remove(self, path: str) -> None:
        del self.files[path]
        self.changed.discard(path)
        self.deleted.add(path)

    def rename(self, old: str, new: str) -> None:
        self.files[new] = self.files.pop(old)
        if old in self.changed:
            self.changed.discard(old)
            self.changed.add(new)
        self.renamed.append((old, new))

    def take_changes(self) -> tuple[list[tuple[str, str]], list[str], list[str]]:
        """Renames, deletions and changed paths since the last call, each in a stable order."""
        changes = (self.renamed, sorted(self.deleted),
                   sorted(p for p in self.changed if p in self.files))
        self.changed, self.deleted, self.renamed = set(), set(), []
        return changes

    # Generators

    def word(self) -> str:
        return self.rng.choice(WORDS)

    def new_service_name(self) -> str:
        while True:
            name = f"{self.word()}-{self.rng.choice(('api', 'worker', 'service', 'sync', 'web'))}"
            if name not in self.services:
                return name

    def image(self, service: str) -> str:
        major, minor, patch = self.tags[service]
        return f"{REGISTRY}/{self.services[service]}/{service}:{major}.{minor}.{patch}"

    def service_root(self, service: str) -> str:
        return f"services/{self.services[service]}/{service}"

    def deployment(self, service: str, env: str) -> dict:
        rng = self.rng
        replicas = {"dev": 1, "staging": rng.randint(1, 3), "prod": rng.randint(2, 12)}[env]
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": service, "namespace": self.services[service],
                         "labels": {"app": service, "team": self.services[service],
                                    "env": env}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": service}},
                "template": {
                    "metadata": {"labels": {"app": service}},
                    "spec": {"containers": [{
                        "name": service, "image": self.image(service),
                        "ports": [{"containerPort": rng.choice((8080, 8000, 9000, 3000))}],
                        "envFrom": [{"configMapRef": {"name": f"{service}-config"}}],
                        "resources": {
                            "requests": {"cpu": f"{rng.choice((100, 250, 500))}m",
                                         "memory": f"{rng.choice((128, 256, 512))}Mi"},
                            "limits": {"cpu": f"{rng.choice((500, 1000, 2000))}m",
                                       "memory": f"{rng.choice((512, 1024, 2048))}Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                           "periodSeconds": rng.choice((5, 10, 15))},
                    }]},
                },
            },
        }

    def config_map(self, service: str, env: str) -> dict:
        rng = self.rng
        data = {"LOG_LEVEL": rng.choice(("debug", "info", "warn")) if env == "dev" else "info",
                "DATABASE_HOST": f"{service}-db.{env}.internal",
                "CACHE_TTL_SECONDS": str(rng.choice((30, 60, 300, 900))),
                "UPSTREAM_URL": f"http://{self.word()}-api.{self.word()}.svc:8080"}
        for _ in range(rng.randint(1, 6)):
            data[f"{self.word().upper()}_{self.word().upper()}"] = self.word()
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"{service}-config", "namespace": self.services[service]},
                "data": data}

    def k8s_service(self, service: str) -> dict:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": service, "namespace": self.services[service]},
                "spec": {"selector": {"app": service},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}

    def autoscaler(self, service: str) -> dict:
        low = self.rng.randint(2, 4)
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": service, "namespace": self.services[service]},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": service},
                         "minReplicas": low, "maxReplicas": low * self.rng.randint(2, 5),
                         "metrics": [{"type": "Resource", "resource": {
                             "name": "cpu", "target": {"type": "Utilization",
                                                       "averageUtilization": 70}}}]}}

    def settings_ini(self, service: str) -> dict:
        rng = self.rng
        return {
            "server": {"port": 8080, "workers": rng.randint(2, 16),
                       "timeout_seconds": rng.choice((10, 30, 60))},
            "database": {"pool_size": rng.randint(5, 40), "statement_timeout_ms": 5000,
                         "name": service.replace("-", "_")},
            "features": {f"{self.word()}_{self.word()}": rng.random() < 0.5
                         for _ in range(rng.randint(2, 8))},
        }

    def flags(self) -> dict:
        return {"flags": [{"name": f"{self.word()}-{self.word()}",
                           "enabled": self.rng.random() < 0.5,
                           "rollout": self.rng.choice((0, 10, 25, 50, 100))}
                          for _ in range(self.rng.randint(2, 9))]}

    def catalog_entry(self, name: str) -> dict:
        rng = self.rng
        return {
            "name": name, "team": rng.choice(TEAMS), "tier": rng.randint(1, 3),
            "description": " ".join(rng.choices(WORDS, k=rng.randint(4, 14))).capitalize() + ".",
            "owners": [f"{self.word()}@example.com" for _ in range(rng.randint(1, 3))],
            "dependencies": sorted({f"{self.word()}-api" for _ in range(rng.randint(0, 6))}),
            "slo": {"availability": rng.choice((99.0, 99.5, 99.9, 99.95)),
                    "latency_p99_ms": rng.choice((100, 200, 500, 1000))},
            "runbook": f"https://wiki.example.com/runbooks/{name}",
            "lifecycle": rng.choice(("production", "production", "beta", "deprecated")),
        }

    def dashboard(self, title: str) -> dict:
        return {"title": title, "refresh": "1m", "panels": [
            {"id": index, "type": self.rng.choice(("graph", "stat", "table")),
             "title": f"{self.word()} {self.word()}".capitalize(),
             "query": f"sum(rate({self.word()}_{self.word()}_total[5m])) by (service)"}
            for index in range(1, self.rng.randint(3, 10))]}

    def alert_rules(self, group: str) -> dict:
        return {"groups": [{"name": group, "rules": [
            {"alert": f"{self.word().capitalize()}{self.word().capitalize()}High",
             "expr": f"{self.word()}_errors_total > {self.rng.randint(1, 100)}",
             "for": self.rng.choice(("1m", "5m", "15m")),
             "labels": {"severity": self.rng.choice(("page", "ticket"))}}
            for _ in range(self.rng.randint(1, 5))]}]}

    # Whole services

    def add_service(self, team: str | None = None) -> str:
        service = self.new_service_name()
        self.services[service] = team or self.rng.choice(TEAMS)
        self.tags[service] = [1, self.rng.randint(0, 20), self.rng.randint(0, 9)]
        root = self.service_root(service)
        self.put(f"{root}/base/service.yaml", self.k8s_service(service))
        self.put(f"{root}/base/kustomization.yaml",
                 {"resources": ["service.yaml", "deployment.yaml"]})
        self.put(f"{root}/base/deployment.yaml", self.deployment(service, "dev"))
        for env in ENVIRONMENTS:
            self.put(f"{root}/{env}/deployment.yaml", self.deployment(service, env))
            self.put(f"{root}/{env}/configmap.yaml", self.config_map(service, env))
            self.put(f"{root}/{env}/kustomization.yaml", {
                "resources": ["../base"], "namespace": self.services[service],
                "patchesStrategicMerge": ["deployment.yaml", "configmap.yaml"]})
            if env == "prod" and self.rng.random() < 0.6:
                self.put(f"{root}/{env}/hpa.yaml", self.autoscaler(service))
        self.put(f"{root}/settings.ini", self.settings_ini(service))
        self.put(f"{root}/flags.yaml", self.flags())
        self.put(f"{root}/logging.json", {"level": "info", "format": "json", "sinks": [
            {"type": "stdout"}, {"type": "http", "url": f"https://logs.example.com/{service}"}]})
        return service

    def remove_service(self, service: str) -> None:
        root = self.service_root(service) + "/"
        for path in [p for p in self.files if p.startswith(root)]:
            self.remove(path)
        del self.services[service], self.tags[service]

    def move_service(self, service: str, team: str) -> None:
        old = self.service_root(service) + "/"
        self.services[service] = team
        new = self.service_root(service) + "/"
        for path in sorted(p for p in self.files if p.startswith(old)):
            self.rename(path, new + path[len(old):])
        for path in sorted(p for p in self.files if p.startswith(new)):
            document = self.files[path]
            if isinstance(document, dict) and isinstance(document.get("metadata"), dict) \
                    and "namespace" in document["metadata"]:
                document["metadata"]["namespace"] = team
                if "labels" in document["metadata"]:
                    document["metadata"]["labels"]["team"] = team
                self.changed.add(path)

    # Everyday changes

    def some_service(self) -> str:
        return self.rng.choice(sorted(self.services))

    def release(self) -> str:
        """A new image tag, in one environment (dev, then staging, then prod over time)."""
        service = self.some_service()
        tag = self.tags[service]
        if self.rng.random() < 0.2:
            tag[1], tag[2] = tag[1] + 1, 0
        else:
            tag[2] += 1
        envs = self.rng.choice((("dev",), ("staging",), ("prod",), ("dev", "staging")))
        for env in envs:
            path = f"{self.service_root(service)}/{env}/deployment.yaml"
            container = self.files[path]["spec"]["template"]["spec"]["containers"][0]
            container["image"] = self.image(service)
            self.changed.add(path)
        return f"{service}: release {'.'.join(map(str, tag))} to {', '.join(envs)}"

    def scale(self) -> str:
        service = self.some_service()
        path = f"{self.service_root(service)}/prod/deployment.yaml"
        spec = self.files[path]["spec"]
        spec["replicas"] = max(1, spec["replicas"] + self.rng.choice((-2, -1, 1, 2, 4)))
        self.changed.add(path)
        return f"{service}: scale prod to {spec['replicas']}"

    def tune(self) -> str:
        service = self.some_service()
        root = self.service_root(service)
        choice = self.rng.random()
        if choice < 0.4:
            env = self.rng.choice(ENVIRONMENTS)
            path = f"{root}/{env}/configmap.yaml"
            data = self.files[path]["data"]
            key = self.rng.choice(sorted(data))
            if self.rng.random() < 0.3:
                data[f"{self.word().upper()}_{self.word().upper()}"] = self.word()
            else:
                data[key] = self.word() if not data[key].isdigit() else str(
                    int(data[key]) * 2)
            self.changed.add(path)
            return f"{service}: configure {env}"
        if choice < 0.7:
            path = f"{root}/settings.ini"
            settings = self.files[path]
            settings["server"]["workers"] = self.rng.randint(2, 16)
            if self.rng.random() < 0.5:
                settings["features"][f"{self.word()}_{self.word()}"] = self.rng.random() < 0.5
            self.changed.add(path)
            return f"{service}: tune settings"
        path = f"{root}/flags.yaml"
        flag = self.rng.choice(self.files[path]["flags"])
        flag["rollout"] = self.rng.choice((0, 10, 25, 50, 100))
        flag["enabled"] = flag["rollout"] > 0
        self.changed.add(path)
        return f"{service}: flag {flag['name']} at {flag['rollout']}%"

    def catalog_edit(self) -> str:
        entries = sorted(p for p in self.files if p.startswith(CATALOG + "/"))
        if self.rng.random() < 0.3:
            name = f"{self.word()}-{self.word()}-{len(entries):04d}"
            self.put(f"{CATALOG}/{name}.json", self.catalog_entry(name))
            return f"catalog: add {name}"
        touched = self.rng.sample(entries, self.rng.randint(1, 3))
        for path in touched:
            entry = self.files[path]
            field = self.rng.choice(("tier", "owners", "lifecycle", "slo", "dependencies"))
            if field == "tier":
                entry["tier"] = self.rng.randint(1, 3)
            elif field == "owners":
                entry["owners"].append(f"{self.word()}@example.com")
            elif field == "lifecycle":
                entry["lifecycle"] = self.rng.choice(("production", "beta", "deprecated"))
            elif field == "slo":
                entry["slo"]["latency_p99_ms"] = self.rng.choice((100, 200, 250, 500, 1000))
            else:
                entry["dependencies"] = sorted({*entry["dependencies"], f"{self.word()}-api"})
            self.changed.add(path)
        return f"catalog: update {len(touched)} entr{'y' if len(touched) == 1 else 'ies'}"

    def observability_edit(self) -> str:
        if self.rng.random() < 0.5:
            path = self.rng.choice(sorted(p for p in self.files if p.startswith("dashboards/")))
            panels = self.files[path]["panels"]
            panels.append({"id": len(panels) + 1, "type": "graph",
                           "title": f"{self.word()} latency".capitalize(),
                           "query": f"histogram_quantile(0.99, {self.word()}_seconds_bucket)"})
            self.changed.add(path)
            return f"dashboards: add a panel to {path.rsplit('/', 1)[1]}"
        path = self.rng.choice(sorted(p for p in self.files if p.startswith("alerts/")))
        rule = self.rng.choice(self.files[path]["groups"][0]["rules"])
        rule["for"] = self.rng.choice(("2m", "5m", "10m", "30m"))
        self.changed.add(path)
        return f"alerts: tune {rule['alert']}"

    def rename_something(self) -> str:
        if self.rng.random() < 0.5:
            old = self.rng.choice(sorted(p for p in self.files if p.startswith("dashboards/")))
            new = f"dashboards/{self.word()}-{self.word()}-overview.json"
            if new in self.files:
                return self.release()
            self.rename(old, new)
            return f"dashboards: rename {old.rsplit('/', 1)[1]}"
        service = self.some_service()
        team = self.rng.choice([t for t in TEAMS if t != self.services[service]])
        self.move_service(service, team)
        return f"{service}: move to team {team}"

    def refactor(self) -> str:
        """A change to hundreds of files at once."""
        kind = self.rng.choice(("label", "probe", "alerts", "catalog"))
        if kind == "label":
            label = f"{self.word()}.example.com/{self.word()}"
            env = self.rng.choice(ENVIRONMENTS)
            for path in sorted(p for p in self.files if p.endswith(f"/{env}/deployment.yaml")):
                self.files[path]["metadata"]["labels"][label] = self.word()
                self.changed.add(path)
            return f"refactor: label every {env} deployment with {label}"
        if kind == "probe":
            for path in sorted(p for p in self.files if p.endswith("/deployment.yaml")):
                container = self.files[path]["spec"]["template"]["spec"]["containers"][0]
                container["readinessProbe"]["timeoutSeconds"] = self.rng.choice((1, 2, 3))
                self.changed.add(path)
            return "refactor: set a readiness timeout on every deployment"
        if kind == "alerts":
            for path in sorted(p for p in self.files if p.startswith("alerts/")):
                for rule in self.files[path]["groups"][0]["rules"]:
                    rule["labels"]["team"] = self.rng.choice(TEAMS)
                self.changed.add(path)
            return "refactor: route every alert to a team"
        for path in sorted(p for p in self.files if p.startswith(CATALOG + "/")):
            self.files[path]["schema"] = 2
            self.changed.add(path)
        return "refactor: catalog entries to schema 2"

    def initial(self) -> str:
        for _ in range(250):
            self.add_service()
        for index in range(690):
            name = f"{self.word()}-{self.word()}-{index:04d}"
            self.put(f"{CATALOG}/{name}.json", self.catalog_entry(name))
        for index in range(300):
            self.put(f"dashboards/{self.word()}-{index:03d}.json",
                     self.dashboard(f"{self.word()} {self.word()}".title()))
        for index in range(300):
            group = f"{self.word()}-{index:03d}"
            self.put(f"alerts/{group}.yaml", self.alert_rules(group))
        for team in TEAMS:
            self.put(f"rbac/{team}.yaml", [
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": f"{team}-{env}", "namespace": team},
                 "subjects": [{"kind": "Group", "name": f"{team}-{env}"}],
                 "roleRef": {"kind": "ClusterRole", "name": "edit"}}
                for env in ENVIRONMENTS])
        self.put("README.json", {"repository": "platform-config", "owners": list(TEAMS)})
        return "Initial import of the platform configuration"

    def next_change(self) -> str:
        roll = self.rng.random()
        if roll < 0.40:
            return self.release()
        if roll < 0.52:
            return self.scale()
        if roll < 0.70:
            return self.tune()
        if roll < 0.82:
            return self.catalog_edit()
        if roll < 0.89:
            return self.observability_edit()
        if roll < 0.94:
            service = self.add_service()
            return f"{service}: new service"
        if roll < 0.955:
            service = self.some_service()
            self.remove_service(service)
            return f"{service}: decommission"
        if roll < 0.99:
            return self.rename_something()
        return self.refactor()


# --------------------------------------------------------------------------------------------
# Writing the history


def data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


def quoted(path: str) -> bytes:
    return json.dumps(path).encode()


def fast_import_stream(commits: int) -> bytes:
    """The whole history as a git fast-import stream."""
    rng = random.Random(SEED)
    repository = Repository(rng)
    rendered: dict[str, bytes] = {}  # each file's bytes as committed
    when = START
    out = []
    for number in range(1, commits + 1):
        # A change can leave every byte as it was (a value set to the one it had); such a
        # commit would be empty, so the change is drawn again until something differs.
        while True:
            message = repository.initial() if number == 1 else repository.next_change()
            renamed, deleted, changed = repository.take_changes()
            for old, new in renamed:
                rendered[new] = rendered.pop(old)
            for path in deleted:
                rendered.pop(path, None)
            contents = {path: render(path, repository.files[path]) for path in changed}
            changed = [path for path in changed if contents[path] != rendered.get(path)]
            rendered.update((path, contents[path]) for path in changed)
            if renamed or deleted or changed:
                break
        when += rng.randint(3600, 40 * 3600)
        author = f"{rng.choice(TEAMS)}-bot <{rng.choice(TEAMS)}@example.com>"
        out.append(b"commit refs/heads/main\n")
        out.append(f"author {author} {when} +0000\ncommitter {author} {when} +0000\n".encode())
        out.append(data(message.encode()))
        for old, new in renamed:
            out.append(b"R " + quoted(old) + b" " + quoted(new) + b"\n")
        for path in deleted:
            out.append(b"D " + quoted(path) + b"\n")
        for path in changed:
            out.append(b"M 100644 inline " + quoted(path) + b"\n")
            out.append(data(contents[path]))
    return b"".join(out)


def write_repository(git_dir: Path, commits: int) -> str:
    """Creates a bare repository at `git_dir` holding the history; returns the head commit."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(git_dir)], check=True)
    subprocess.run(["git", f"--git-dir={git_dir}", "fast-import", "--quiet"],
                   input=fast_import_stream(commits), check=True)
    return head(git_dir)


def head(repository: Path) -> str:
    return subprocess.run(["git", f"--git-dir={repository}", "rev-parse", "refs/heads/main"],
                          capture_output=True, text=True, check=True).stdout.strip()


def bundle_head(bundle: Path) -> str:
    listing = subprocess.run(["git", "bundle", "list-heads", str(bundle)],
                             capture_output=True, text=True, check=True).stdout
    return next(line.split()[0] for line in listing.splitlines()
                if line.endswith("refs/heads/main"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the git bundle to write (or to --check)")
    parser.add_argument("--commits", type=int, default=COMMITS,
                        help="how many commits (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="generate again and compare the head commit with the bundle's")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replay-history-") as scratch:
        git_dir = Path(scratch) / "repository.git"
        generated = write_repository(git_dir, args.commits)
        if args.check:
            stored = bundle_head(args.bundle)
            print(f"generated {generated}, bundle {stored}:"
                  f" {'the same' if generated == stored else 'DIFFERENT'}")
            return 0 if generated == stored else 1
        subprocess.run(["git", f"--git-dir={git_dir}", "gc", "-q", "--aggressive"], check=True)
        args.bundle.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", f"--git-dir={git_dir}", "bundle", "create", "-q",
                        str(args.bundle.resolve()), "HEAD", "refs/heads/main"], check=True)
        files = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only",
                                "main"], capture_output=True, text=True, check=True).stdout
        print(f"{args.bundle}: {args.commits} commits, head {generated},"
              f" {len(files.splitlines())} files at the head,"
              f" {args.bundle.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
