"""Lineage: what fed a thing (upstream) and what it fed (downstream), in one call.

The graph is the platform's own records, walked on demand::

    dataset --(training, test, ...)--> run --(produced)--> version --(served by)--> endpoint
                                                                 \\--(answered)--> prediction
    dataset --(input)--> job <--(scored)-- version;   job --(output)--> dataset
    run --(reproduced)--> run          (``modelyard reproduce``: the original, then its copy)

Nodes are written ``KIND:KEY``: ``dataset:<name>`` (every content version of
that name) or ``dataset:<id>``, ``run:<id>``, ``version:<model>/<n>``,
``endpoint:<name>``, ``prediction:<endpoint>/<prediction id>``, ``job:<batch job id>``.
A batch job's input and output are dataset nodes (found by content fingerprint, so a
run that logged the scored file or trains on the predictions is linked). A prediction
always names the concrete version that answered, so "which datasets fed the
model that made prediction X" is a walk up from it; "which endpoints serve
models trained on dataset D" is a walk down (``serves`` says whether the
endpoint's current revision routes to the version, or only an earlier one did).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select

from modelyard.domain.endpoints import Spec
from modelyard.domain.models import SOURCE_RUN_TAG, ModelRef
from modelyard.domain.reproduction import REPRODUCES_TAG
from modelyard.errors import InvalidInput, NotFound
from modelyard.serving.predictlog import PredictionLog
from modelyard.store import schema as t
from modelyard.store.database import Database
from modelyard.tracking.dataset_registry import dataset_classes

KINDS = ("dataset", "run", "version", "endpoint", "prediction", "job")


@dataclass(frozen=True)
class Node:
    kind: str
    key: str
    label: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True)
class Edge:
    source: str  # node ref, upstream side
    target: str  # node ref, downstream side
    relation: str


@dataclass(frozen=True)
class LineageGraph:
    root: str
    nodes: list[Node]
    edges: list[Edge]

    def upstream(self, kind: str | None = None) -> list[Node]:
        """Every node the root depends on (optionally of one kind)."""
        return self._walk(lambda e: e.target, lambda e: e.source, kind)

    def downstream(self, kind: str | None = None) -> list[Node]:
        """Every node that depends on the root (optionally of one kind)."""
        return self._walk(lambda e: e.source, lambda e: e.target, kind)

    def _walk(self, near: Any, far: Any, kind: str | None) -> list[Node]:
        by_ref = {n.ref: n for n in self.nodes}
        seen: list[str] = []
        frontier = [self.root]
        while frontier:
            current = frontier.pop()
            for edge in self.edges:
                if near(edge) == current and far(edge) not in seen:
                    seen.append(far(edge))
                    frontier.append(far(edge))
        return [by_ref[r] for r in seen if r in by_ref and (kind is None or by_ref[r].kind == kind)]


def parse_node(text: str) -> tuple[str, str]:
    kind, sep, key = text.partition(":")
    if not sep or kind not in KINDS or not key:
        raise InvalidInput(
            f"invalid lineage node {text!r}: expected KIND:KEY with KIND one of {', '.join(KINDS)}"
            " (e.g. version:churn/3, prediction:churn/3f9c0a1b2c3d-0000002a)"
        )
    return kind, key


class Lineage:
    """Walk the lineage graph from one node, both ways."""

    def __init__(self, db: Database, predictions: PredictionLog) -> None:
        self.db = db
        self.predictions = predictions

    def of(self, node: str) -> LineageGraph:
        kind, key = parse_node(node)
        graph = _Builder()
        with self.db.read() as conn:
            if kind == "prediction":
                self._prediction(conn, graph, key)
            elif kind == "version":
                ref = ModelRef.parse(key)
                if ref.version is None:
                    raise InvalidInput(f"name a version number: version:{ref.name}/3")
                self._version_up(conn, graph, ref.name, ref.version)
                self._version_down(conn, graph, ref.name, ref.version)
            elif kind == "run":
                self._run(conn, graph, key, up=True, down=True)
            elif kind == "dataset":
                self._dataset(conn, graph, key)
            elif kind == "job":
                self._job(conn, graph, key)
            else:
                self._endpoint(conn, graph, key)
            root = graph.root
            if root is None:
                raise NotFound(f"{node} does not exist")
            self._sensitivity(conn, graph)
            self._endpoint_times(conn, graph)
        return LineageGraph(root=root, nodes=list(graph.nodes.values()), edges=graph.edges)

    def _sensitivity(self, conn: Any, graph: _Builder) -> None:
        """Datasets carry their classes; a version carries those of the data its run
        used; an endpoint those of the versions its current revision serves (whatever
        the walk reached: the same answer from any root); a prediction those of the
        version that answered it."""
        nodes = list(graph.nodes.values())
        served = {n.ref: self._current_targets(conn, n.key) for n in nodes if n.kind == "endpoint"}
        versions = {n.ref for n in nodes if n.kind == "version"}
        versions |= {
            f"version:{model}/{number}" for found in served.values() for model, number in found
        }
        by_version = {ref: self._datasets_of(conn, ref) for ref in versions}
        names = {n.label for n in nodes if n.kind == "dataset"}
        names |= {name for used in by_version.values() for name in used}
        classes = dataset_classes(conn, names)
        version_classes = {
            ref: {tag for name in used for tag in classes.get(name, [])}
            for ref, used in by_version.items()
        }
        for node in nodes:
            if node.kind == "dataset":
                found = set(classes.get(node.label, []))
            elif node.kind == "version":
                found = version_classes[node.ref]
            elif node.kind == "endpoint":
                found = {
                    tag
                    for model, number in served[node.ref]
                    for tag in version_classes[f"version:{model}/{number}"]
                }
            else:
                found = {
                    tag
                    for e in graph.edges
                    if e.target == node.ref and e.relation == "answered"
                    for tag in version_classes.get(e.source, set())
                }
            graph.nodes[node.ref] = Node(
                node.kind, node.key, node.label, {**node.attributes, "sensitivity": sorted(found)}
            )

    def _endpoint_times(self, conn: Any, graph: _Builder) -> None:
        """An endpoint carries when it was created and last changed (its revision's time)."""
        names = [n.key for n in graph.nodes.values() if n.kind == "endpoint"]
        if not names:
            return
        e = t.endpoints.c
        rows = conn.execute(
            select(e.name, e.created_at, e.updated_at).where(e.name.in_(names))
        ).all()
        for row in rows:
            node = graph.nodes[f"endpoint:{row.name}"]
            times = {"created": row.created_at, "updated": row.updated_at}
            graph.nodes[node.ref] = Node(
                node.kind, node.key, node.label, {**node.attributes, **times}
            )

    def _datasets_of(self, conn: Any, version_ref: str) -> set[str]:
        """Names of the datasets the run of ``version:<model>/<n>`` used."""
        v, m, u, d = t.model_versions.c, t.models.c, t.run_datasets.c, t.datasets.c
        model, _, number = version_ref.removeprefix("version:").rpartition("/")
        rows = conn.execute(
            select(d.name)
            .join(t.run_datasets, u.dataset_id == d.id)
            .join(t.model_versions, v.run_id == u.run_id)
            .join(t.models, m.id == v.model_id)
            .where(m.name == model, v.version == int(number))
        ).all()
        return {row.name for row in rows}

    def _current_targets(self, conn: Any, endpoint: str) -> set[tuple[str, int]]:
        """The versions the current revision of ``endpoint`` routes or shadows to."""
        e, r = t.endpoints.c, t.endpoint_revisions.c
        spec = conn.execute(
            select(r.spec)
            .join(t.endpoints, (e.id == r.endpoint_id) & (e.revision == r.revision))
            .where(e.name == endpoint)
        ).scalar()
        if spec is None:
            return set()
        return {(target.model, target.version) for _, target in Spec.from_dict(spec).targets()}

    # -- walks ----------------------------------------------------------------

    def _prediction(self, conn: Any, graph: _Builder, key: str) -> None:
        endpoint, _, prediction_id = key.partition("/")
        if not prediction_id:
            raise InvalidInput("name a prediction as prediction:<endpoint>/<prediction id>")
        rows = self.predictions.query(
            endpoint, ids=[prediction_id], with_labels=True, limit=None
        ).to_pylist()
        if not rows:
            raise NotFound(f"endpoint '{endpoint}' logged no prediction '{prediction_id}'")
        primary = next((r for r in rows if r["role"] == "primary"), rows[0])
        root = graph.add(
            "prediction",
            key,
            f"prediction {prediction_id}",
            endpoint=endpoint,
            revision=primary["revision"],
            ts=primary["ts"],
            output=primary["output"],
            label=primary.get("label"),
        )
        graph.root = root
        endpoint_ref = graph.add("endpoint", endpoint, f"endpoint {endpoint}")
        graph.edge(endpoint_ref, root, f"answered at revision {primary['revision']}")
        for row in rows:
            version = self._version_node(conn, graph, row["model"], row["version"])
            graph.edge(version, root, "shadowed" if row["role"] == "shadow" else "answered")
            self._version_up(conn, graph, row["model"], row["version"], root=False)

    def _version_node(self, conn: Any, graph: _Builder, model: str, number: int) -> str:
        v, m, g = t.model_versions.c, t.models.c, t.version_tags.c
        row = conn.execute(
            select(v.stage, v.run_id, v.package_digest, v.created_by, g.value.label("source_run"))
            .join(t.models, m.id == v.model_id)
            .outerjoin(t.version_tags, (g.version_id == v.id) & (g.key == SOURCE_RUN_TAG))
            .where(m.name == model, v.version == number)
        ).first()
        if row is None:
            raise NotFound(f"model '{model}' has no version {number}")
        provenance = {} if row.source_run is None else {"source_run": row.source_run}
        return graph.add(
            "version",
            f"{model}/{number}",
            f"{model}/{number}",
            stage=row.stage,
            digest=row.package_digest,
            created_by=row.created_by,
            **provenance,
        )

    def _version_up(
        self, conn: Any, graph: _Builder, model: str, number: int, *, root: bool = True
    ) -> None:
        version = self._version_node(conn, graph, model, number)
        if root:
            graph.root = version
        v, m = t.model_versions.c, t.models.c
        run_id = conn.execute(
            select(v.run_id)
            .join(t.models, m.id == v.model_id)
            .where(m.name == model, v.version == number)
        ).scalar()
        if run_id:
            run = self._run(conn, graph, run_id, up=True, down=False)
            graph.edge(run, version, "produced")

    def _version_down(self, conn: Any, graph: _Builder, model: str, number: int) -> None:
        version = self._version_node(conn, graph, model, number)
        for name, serves in self._endpoints_of(conn, {(model, number)}).get((model, number), []):
            endpoint = graph.add("endpoint", name, f"endpoint {name}")
            graph.edge(version, endpoint, "serves" if serves else "served")
        self._jobs_of(conn, graph, t.batch_jobs.c.version == number, model=model)

    def _run(self, conn: Any, graph: _Builder, run_id: str, *, up: bool, down: bool) -> str:
        r = t.runs.c
        row = conn.execute(
            select(r.id, r.name, r.status, r.user, r.start_time, r.end_time).where(r.id == run_id)
        ).first()
        if row is None:
            raise NotFound(f"run '{run_id}' does not exist")
        run = graph.add(
            "run",
            row.id,
            row.name or row.id[:12],
            status=row.status,
            user=row.user,
            started=row.start_time,
            ended=row.end_time,
        )
        if graph.root is None:
            graph.root = run
        if up:
            d, u = t.datasets.c, t.run_datasets.c
            for data in conn.execute(
                select(d.id, d.name, d.fingerprint, d.row_count, u.role)
                .join(t.run_datasets, u.dataset_id == d.id)
                .where(u.run_id == run_id)
            ):
                dataset = graph.add(
                    "dataset",
                    data.id,
                    data.name,
                    fingerprint=data.fingerprint,
                    rows=data.row_count,
                )
                graph.edge(dataset, run, data.role)
        if down:
            self._runs_down(conn, graph, {run_id: run})
        self._reproductions(conn, graph, run_id, run, up=up, down=down)
        return run

    def _reproductions(
        self, conn: Any, graph: _Builder, run_id: str, run: str, *, up: bool, down: bool
    ) -> None:
        """One step along ``modelyard.reproduces``: the run this one reproduces (up) and
        the runs that reproduce it (down)."""
        g, r = t.tags.c, t.runs.c
        if up:
            for row in conn.execute(
                select(r.id, r.name, r.status)
                .join(t.tags, r.id == g.value)
                .where(g.key == REPRODUCES_TAG, g.run_id == run_id)
            ):
                original = graph.add("run", row.id, row.name or row.id[:12], status=row.status)
                graph.edge(original, run, "reproduced")
        if down:
            for row in conn.execute(
                select(r.id, r.name, r.status)
                .join(t.tags, g.run_id == r.id)
                .where(g.key == REPRODUCES_TAG, g.value == run_id)
            ):
                copy = graph.add("run", row.id, row.name or row.id[:12], status=row.status)
                graph.edge(run, copy, "reproduced")

    def _runs_down(self, conn: Any, graph: _Builder, runs: dict[str, str]) -> None:
        v, m = t.model_versions.c, t.models.c
        produced = conn.execute(
            select(v.run_id, m.name, v.version)
            .join(t.models, m.id == v.model_id)
            .where(v.run_id.in_(list(runs)))
        ).all()
        for row in produced:
            version = self._version_node(conn, graph, row.name, row.version)
            graph.edge(runs[row.run_id], version, "produced")
        for row in produced:
            self._jobs_of(conn, graph, t.batch_jobs.c.version == row.version, model=row.name)
        served = self._endpoints_of(conn, {(r.name, r.version) for r in produced})
        for (model, number), endpoints in served.items():
            for name, serves in endpoints:
                endpoint = graph.add("endpoint", name, f"endpoint {name}")
                graph.edge(f"version:{model}/{number}", endpoint, "serves" if serves else "served")

    def _dataset(self, conn: Any, graph: _Builder, key: str) -> None:
        d, u = t.datasets.c, t.run_datasets.c
        rows = conn.execute(select(t.datasets).where(or_(d.id == key, d.name == key))).all()
        if not rows:
            raise NotFound(f"dataset '{key}' does not exist")
        runs: dict[str, str] = {}
        for data in rows:
            dataset = graph.add(
                "dataset", data.id, data.name, fingerprint=data.fingerprint, rows=data.row_count
            )
            if graph.root is None or data.id == key:
                graph.root = dataset
            for use in conn.execute(select(u.run_id, u.role).where(u.dataset_id == data.id)):
                run = self._run(conn, graph, use.run_id, up=False, down=False)
                graph.edge(dataset, run, use.role)
                runs[use.run_id] = run
            j = t.batch_jobs.c
            self._jobs_of(conn, graph, j.input_dataset_id == data.id)
            for written in self._jobs_of(conn, graph, j.output_dataset_id == data.id):
                self._version_up(conn, graph, written.model, written.version, root=False)
        if len(rows) > 1 and not any(r.id == key for r in rows):
            root = graph.add("dataset", key, key, versions=len(rows))
            for data in rows:
                graph.edge(root, f"dataset:{data.id}", "content version")
            graph.root = root
        if runs:
            self._runs_down(conn, graph, runs)

    def _endpoint(self, conn: Any, graph: _Builder, name: str) -> None:
        e, r = t.endpoints.c, t.endpoint_revisions.c
        row = conn.execute(select(e.id, e.revision).where(e.name == name)).first()
        if row is None:
            raise NotFound(f"endpoint '{name}' does not exist")
        endpoint = graph.add("endpoint", name, f"endpoint {name}", revision=row.revision)
        graph.root = endpoint
        seen: dict[tuple[str, int], bool] = {}
        for revision in conn.execute(
            select(r.revision, r.spec).where(r.endpoint_id == row.id).order_by(r.revision)
        ):
            for _, target in Spec.from_dict(revision.spec).targets():
                key = (target.model, target.version)
                seen[key] = seen.get(key, False) or revision.revision == row.revision
        for (model, number), current in seen.items():
            version = self._version_node(conn, graph, model, number)
            graph.edge(version, endpoint, "serves" if current else "served")
            self._version_up(conn, graph, model, number, root=False)
        graph.root = endpoint

    def _job(self, conn: Any, graph: _Builder, job_id: str) -> None:
        found = self._jobs_of(conn, graph, t.batch_jobs.c.id == job_id)
        if not found:
            raise NotFound(f"batch job '{job_id}' does not exist")
        graph.root = f"job:{job_id}"
        self._version_up(conn, graph, found[0].model, found[0].version, root=False)

    def _jobs_of(
        self, conn: Any, graph: _Builder, condition: Any, *, model: str | None = None
    ) -> list[Any]:
        """Batch jobs matching ``condition``, each with its version, input and output."""
        j, m = t.batch_jobs.c, t.models.c
        query = (
            select(t.batch_jobs, m.name.label("model"))
            .join(t.models, m.id == j.model_id)
            .where(condition)
            .order_by(j.created_at)
        )
        if model is not None:
            query = query.where(m.name == model)
        rows = list(conn.execute(query).all())
        for row in rows:
            job = graph.add(
                "job",
                row.id,
                f"batch job {row.id[:12]}",
                status=row.status,
                user=row.created_by,
                started=row.created_at,
                finished=row.finished_at,
                rows=row.rows_out,
                input=row.input_uri,
                output=row.output_uri,
            )
            version = self._version_node(conn, graph, row.model, row.version)
            graph.edge(version, job, "scored")
            if row.input_dataset_id is not None:
                graph.edge(self._dataset_node(conn, graph, row.input_dataset_id), job, "input")
            if row.output_dataset_id is not None:
                graph.edge(job, self._dataset_node(conn, graph, row.output_dataset_id), "output")
        return rows

    def _dataset_node(self, conn: Any, graph: _Builder, dataset_id: str) -> str:
        d = t.datasets.c
        data = conn.execute(
            select(d.id, d.name, d.fingerprint, d.row_count).where(d.id == dataset_id)
        ).one()
        return graph.add(
            "dataset", data.id, data.name, fingerprint=data.fingerprint, rows=data.row_count
        )

    def _endpoints_of(
        self, conn: Any, versions: set[tuple[str, int]]
    ) -> dict[tuple[str, int], list[tuple[str, bool]]]:
        """For each version, the endpoints whose revisions ever routed to it (and if now)."""
        if not versions:
            return {}
        e, r = t.endpoints.c, t.endpoint_revisions.c
        found: dict[tuple[str, int], dict[str, bool]] = {}
        for row in conn.execute(
            select(e.name, e.revision.label("current"), r.revision, r.spec).join(
                t.endpoint_revisions, r.endpoint_id == e.id
            )
        ):
            for _, target in Spec.from_dict(row.spec).targets():
                key = (target.model, target.version)
                if key in versions:
                    now = found.setdefault(key, {}).get(row.name, False)
                    found[key][row.name] = now or row.revision == row.current
        return {key: sorted(names.items()) for key, names in found.items()}


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.root: str | None = None

    def add(self, kind: str, key: str, title: str, /, **attributes: Any) -> str:
        node = Node(kind, key, title, attributes)
        if node.ref not in self.nodes or attributes:
            self.nodes[node.ref] = node
        return node.ref

    def edge(self, source: str, target: str, relation: str) -> None:
        edge = Edge(source, target, relation)
        if edge not in self.edges:
            self.edges.append(edge)


def graph_from_dict(data: dict[str, Any]) -> LineageGraph:
    return LineageGraph(
        root=data["root"],
        nodes=[
            Node(n["kind"], n["key"], n["label"], n.get("attributes", {})) for n in data["nodes"]
        ],
        edges=[Edge(e["source"], e["target"], e["relation"]) for e in data["edges"]],
    )
