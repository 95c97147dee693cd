"""The data plane on Ray Serve (``modelyard serve ENDPOINT --backend ray``).

Each Ray Serve replica runs the local data plane itself: the same ``Runtime`` and
the same app (``serving/server.py``'s ``runtime_for`` and ``app_for``) behind
``serve.ingress``, so routes, weights, sticky keys, shadows, the prediction log,
labels, metrics and API keys behave exactly as in ``modelyard serve``::

    Ray Serve proxy (host:port) ── one application "modelyard", route prefix /
        └─ deployment "modelyard-data-plane": min..max replicas, autoscaled
             replica = bootstrap(settings) + Runtime(names) + create_serving_app

A replica loads every hosted version before it takes traffic, then follows the
control plane as a local server does: a new revision is loaded beside the old one
and swapped in one assignment, so revisions apply without failed requests on
every replica, with no redeploy. The scaling settings (``min_replicas``,
``max_replicas``, ``target_ongoing_requests``, ``upscale_delay_s``,
``downscale_delay_s``, kept with ``batching`` in the endpoint's spec) become the
deployment's autoscaling config; this command re-reads them and redeploys when they
change. A redeploy keeps the replicas: the deployment carries a code version of its
own (a digest of this process's token and the replica's arguments), so Ray Serve sees
only the autoscaling config and the requests a replica may hold change, and applies
them to the running replicas (a reconfigure, not a restart). Anything else (another
yard, other endpoints, CPUs per replica, a new ``modelyard serve`` process, which may
run newer code) is a new version: a rolling update.

The prediction log is shared by construction: each replica appends to its own
journal under the log root (``journal-<token>.jsonl``, written before the answer
is sent, so it survives the replica being killed; a folder every replica sees:
one machine or a shared filesystem), or, with ``MODELYARD_PREDICTIONS=database``,
to the metadata database, answering only once the rows are committed (any number
of machines). Either way a replica killed mid-load loses no acknowledged
prediction: its journal is sealed by the next reader, and Ray Serve starts a
replacement. Prediction ids carry a per-process prefix, so replicas never clash.
``/metrics`` answers for the replica that took the request.

Ray is imported here only, and this module only by ``--backend ray``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import pickle
import secrets
import signal
import time
from typing import Any

from starlette.applications import Starlette

from modelyard.batch.raydata import ray_address
from modelyard.bootstrap import Services, bootstrap
from modelyard.config import Settings
from modelyard.domain.endpoints import Batching
from modelyard.errors import NotConfigured, NotFound
from modelyard.serving.app import DEFAULT_MAX_BODY
from modelyard.serving.server import app_for, runtime_for

APPLICATION = "modelyard"
DEPLOYMENT = "modelyard-data-plane"
log = logging.getLogger("modelyard.serving")
_PROCESS = secrets.token_hex(8)
"""Part of every code version this process deploys: another process's never match."""


def autoscaling_of(settings: list[Batching]) -> dict[str, Any]:
    """Ray Serve's autoscaling config for endpoints with these settings (the most any
    of them asks for, when one deployment hosts several: the most replicas, the fewest
    requests per replica, the quickest to add one and the slowest to remove one).

    Ray Serve's replicas and proxy report requests in flight every 10 s and it averages
    them over the last 30 s, so a replica is added some 10 s after load arrives (plus
    ``upscale_delay_s``) and removed once that average is under the target (plus
    ``downscale_delay_s``)."""
    return {
        "min_replicas": max(s.min_replicas for s in settings),
        "max_replicas": max(s.max_replicas for s in settings),
        "target_ongoing_requests": min(s.target_ongoing_requests for s in settings),
        "upscale_delay_s": min(s.upscale_delay_s for s in settings),
        "downscale_delay_s": max(s.downscale_delay_s for s in settings),
    }


class Replica:
    """One Ray Serve replica: the local data plane over ``names``."""

    def __init__(self, settings: Settings, names: list[str], refresh: float, max_body: int) -> None:
        self.settings = settings
        self.names = names
        self.refresh = refresh
        self.max_body = max_body
        self.services: Services | None = None

    async def __serve_build_asgi_app__(self) -> Starlette:
        """The app, once every hosted version is loaded (Ray Serve sends no request to a
        replica before this returns; the lifespan then starts the watcher)."""
        services = await asyncio.to_thread(bootstrap, self.settings, create_if_empty=False)
        self.services = services
        runtime = runtime_for(services, self.names, refresh=self.refresh)
        runtime.loop = asyncio.get_running_loop()  # the batchers answer on this loop
        await asyncio.to_thread(runtime.sync)
        return app_for(services, runtime, max_body=self.max_body)


def application(
    settings: Settings,
    names: list[str],
    scaling: dict[str, Any],
    *,
    refresh: float = 1.0,
    max_body: int = DEFAULT_MAX_BODY,
    replica_cpus: float = 1.0,
) -> Any:
    """The bound Ray Serve application hosting ``names``."""
    serve = import_serve()
    ongoing = max(16, math.ceil(scaling["target_ongoing_requests"] * 4))
    arguments = (settings, names, refresh, max_body)
    deployment = serve.deployment(
        serve.ingress()(Replica),
        name=DEPLOYMENT,
        autoscaling_config=scaling,
        max_ongoing_requests=ongoing,
        ray_actor_options={"num_cpus": replica_cpus},
        graceful_shutdown_timeout_s=10,
    )
    # Ray Serve no longer takes a version from its public API; ``_internal`` is its own
    # way to give one (without it, every deploy is a new random version: a restart)
    deployment = deployment.options(version=code_version(arguments, replica_cpus), _internal=True)
    return deployment.bind(*arguments)


def code_version(arguments: tuple[Any, ...], replica_cpus: float) -> str:
    """The deployment's code version: the same for the same replica arguments deployed by
    this process, so a scaling change reconfigures the replicas instead of replacing them."""
    digest = hashlib.sha256(pickle.dumps((_PROCESS, arguments, replica_cpus)))
    return digest.hexdigest()[:16]


def deploy(
    services: Services,
    names: list[str],
    *,
    refresh: float = 1.0,
    max_body: int = DEFAULT_MAX_BODY,
    replica_cpus: float = 1.0,
) -> dict[str, Any]:
    """Deploy (or update) the application on the connected cluster; its autoscaling
    config. Returns once at least ``min_replicas`` replicas serve."""
    serve = import_serve()
    scaling = autoscaling_of(_settings(services, names))
    app = application(
        services.settings,
        names,
        scaling,
        refresh=refresh,
        max_body=max_body,
        replica_cpus=replica_cpus,
    )
    serve.run(app, name=APPLICATION, route_prefix="/", blocking=False)
    return scaling


def _settings(services: Services, names: list[str]) -> list[Batching]:
    live = services.endpoints.live(names)
    if not live:
        raise NotFound(f"no endpoint to serve among {', '.join(names)}")
    return [spec.batching for _, _, spec in live]


def check_names(services: Services, names: list[str]) -> list[str]:
    """``names``, refused before anything starts if one does not exist; all when empty."""
    known = [e.name for e in services.endpoints.list()]
    for name in names:
        if name not in known:
            raise NotFound(f"endpoint '{name}' does not exist")
    return names or known


def serve(
    names: list[str],
    *,
    host: str,
    port: int,
    settings: Settings,
    refresh: float = 1.0,
    max_body: int = DEFAULT_MAX_BODY,
    address: str | None = None,
    replica_cpus: float = 1.0,
) -> None:
    """Host ``names`` on Ray Serve until stopped; redeploys when their scaling changes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C: delete the application
    services = bootstrap(settings, create_if_empty=False)
    hosted = check_names(services, names)
    ray, serve_module = import_ray(), import_serve()
    connected_here = not ray.is_initialized()
    if connected_here:
        ray.init(address=ray_address(address), log_to_driver=False)
    try:
        serve_module.start(http_options={"host": host, "port": port})
        scaling = deploy(
            services, hosted, refresh=refresh, max_body=max_body, replica_cpus=replica_cpus
        )
        print(
            f"modelyard serve on Ray Serve at http://{host}:{port} ({', '.join(hosted)}; "
            f"{scaling['min_replicas']}-{scaling['max_replicas']} replicas)",
            flush=True,
        )
        while True:
            time.sleep(max(refresh, 1.0) * 5)
            wanted = autoscaling_of(_settings(services, hosted))
            if wanted != scaling:
                log.info("scaling changed to %s: redeploying", wanted)
                scaling = deploy(
                    services, hosted, refresh=refresh, max_body=max_body, replica_cpus=replica_cpus
                )
    except KeyboardInterrupt:
        pass
    finally:
        serve_module.delete(APPLICATION)
        if connected_here:
            serve_module.shutdown()
            ray.shutdown()
        services.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise NotConfigured(
            "serving on Ray needs Ray Serve: pip install 'modelyard[ray]'"
        ) from None
    return ray


def import_serve() -> Any:
    import_ray()
    try:
        from ray import serve
    except ImportError:
        raise NotConfigured(
            "serving on Ray needs Ray Serve: pip install 'modelyard[ray]'"
        ) from None
    return serve
