"""Run the API (and the web UI) with uvicorn; refuse to start on a database that is not
migrated. ``modelyard ui`` is the same server for one person on the embedded store."""

from __future__ import annotations

import logging
import signal

import uvicorn

from modelyard.api.app import create_app
from modelyard.bootstrap import Services, bootstrap
from modelyard.config import Settings
from modelyard.domain.identity import Role
from modelyard.errors import InvalidInput, NotFound

UI_KEY_NAME = "modelyard ui session"
UI_KEY_DAYS = 1.0


def log_to_stderr() -> None:
    """The server's own warnings and errors (an error id beside its traceback, a store
    that refused a write) on standard error, with their time."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")


def serve(host: str, port: int, settings: Settings) -> None:
    """Serve ``/api/v1`` and the UI for ``settings``; raises ``NotMigrated`` before binding."""
    log_to_stderr()
    services = bootstrap(settings, create_if_empty=False)
    swept = services.catalog.sweep_uploads()
    if swept:
        print(f"removed {len(swept)} package uploads nobody registered in a day", flush=True)
    app = create_app(services)
    print(f"modelyard server on http://{host}:{port} (store: {services.db.describe()})", flush=True)
    print(f"web UI: http://{host}:{port}/ (sign in with an API key)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    services.close()


def serve_ui(host: str, port: int, settings: Settings, user: str) -> None:
    """The UI on the store itself, signed in as ``user`` by a key made for this session.

    The key lasts a day at most and is revoked when the server stops; the address printed
    carries it in its fragment (``#key=``), which the browser never sends to a server:
    the sign-in page reads it, signs in and removes it from the address bar.
    """
    log_to_stderr()
    services = bootstrap(settings)
    try:
        record, token = services.identity.create_key(
            _ui_user(services, user), name=UI_KEY_NAME, expires_in_days=UI_KEY_DAYS
        )
        print(f"modelyard ui over {services.db.describe()}, signed in as '{user}'", flush=True)
        print(f"open http://{host}:{port}/signin#key={token}", flush=True)
        print("(the key in that address is revoked when this command stops)", flush=True)
        # uvicorn re-raises the signal that stopped it: end with SystemExit, not a kill,
        # so the key is revoked below
        signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            uvicorn.run(
                create_app(services), host=host, port=port, log_level="warning", access_log=False
            )
        finally:
            services.identity.revoke_key(record.id)
    finally:
        services.close()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _ui_user(services: Services, name: str) -> str:
    """``name`` if it is a user; on a store with no admin yet, it becomes the first."""
    try:
        return services.identity.get_user(name).name
    except NotFound:
        if services.identity.has_admin():
            raise InvalidInput(
                f"user '{name}' does not exist in this store: pass --user NAME, or add it "
                "with `modelyard admin user add`"
            ) from None
    return services.identity.create_user(name, Role.ADMIN).name
