"""Package signing keys and signatures on SQLite and PostgreSQL: signed at registration in
the registering transaction, audited without the private key, gating production when the
platform requires signed packages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select, update

from modelyard.bootstrap import Services, bootstrap
from modelyard.client.local import LocalBackend
from modelyard.client.yard import Yard
from modelyard.config import Settings
from modelyard.domain.endpoints import TargetRequest
from modelyard.errors import Conflict, IntegrityError, InvalidInput, NotFound, PermissionDenied
from modelyard.jsonable import plain
from modelyard.packaging.signing import check_signature, key_id_of
from modelyard.serving.models import ModelLoader
from modelyard.store import schema as t
from tests.actors import as_user
from tests.stores import services_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    with services_on(request.param, tmp_path / "home") as built:
        yield built


def register(services: Services, name: str = "churn") -> str:
    bunch = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(bunch.data, bunch.target)
    yard = Yard(LocalBackend(services))
    return yard.models.register(model, name=name, input_example=bunch.data.head(2)).ref


def test_keys_sign_every_later_version_and_never_show_the_private_half(
    services: Services,
) -> None:
    unsigned = register(services)
    signing = services.signing
    key = as_user("ana", signing.create_key, "platform-2026")
    assert (key.name, key.created_by, key.key_id) == (
        "platform-2026",
        "ana",
        key_id_of(key.public_key),
    )
    with pytest.raises(Conflict, match="signing key 'platform-2026' exists already"):
        signing.create_key("platform-2026")
    with pytest.raises(InvalidInput, match="invalid signing key name '../x'"):
        signing.create_key("../x")
    assert signing.keys() == [key]

    signed = as_user("bob", register, services)
    signature = signing.signature_of("churn", 2)
    version = services.catalog.get_version(signed)
    assert (signature.key_name, signature.signed_by) == ("platform-2026", "bob")
    assert signature.package_digest == version.package_digest
    check_signature(signature.public_key, signature.signature, version.package_digest)
    with pytest.raises(IntegrityError, match="fails its signature check"):
        check_signature(signature.public_key, signature.signature, "0" * 64)
    with pytest.raises(NotFound, match="churn/1 is not signed"):
        signing.signature_of("churn", 1)
    assert unsigned == "churn/1"

    with services.db.read() as conn:
        stored = conn.execute(select(t.signing_keys)).one()._mapping
    private_hex = services.secrets.box.decrypt(stored["private_ciphertext"])
    assert len(private_hex) == 64 and private_hex not in stored["private_ciphertext"]
    events = services.audit.events()
    actions = [(e.action, e.resource, e.actor) for e in events]
    assert ("create signing key", "signing-keys/platform-2026", "ana") in actions
    assert ("sign version", "models/churn/2", "bob") in actions
    assert private_hex not in json.dumps(plain(events)) + repr(signing.keys())


def test_a_second_key_takes_over_and_old_signatures_still_verify(services: Services) -> None:
    services.signing.create_key("first")
    register(services)
    services.signing.create_key("second")
    register(services)
    first, second = (
        services.signing.signature_of("churn", 1),
        services.signing.signature_of("churn", 2),
    )
    assert (first.key_name, second.key_name) == ("first", "second")
    check_signature(first.public_key, first.signature, first.package_digest)


def test_required_signatures_gate_production_and_traffic(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(
        home,
        f"sqlite:///{home / 'modelyard.db'}",
        str(home / "artifacts"),
        require_signed_packages=True,
    )
    services = bootstrap(settings)
    try:
        unsigned = register(services)
        services.catalog.transition_stage(unsigned, "staging")
        with pytest.raises(PermissionDenied, match="churn/1 is not signed .* before production"):
            services.catalog.transition_stage(unsigned, "production")
        with pytest.raises(PermissionDenied, match="before taking traffic"):
            services.endpoints.create("churn", routes=[TargetRequest.parse(f"{unsigned}=100")])
        assert services.catalog.get_version(unsigned).stage.value == "staging"
        loader = ModelLoader(
            services.catalog,
            services.artifacts,
            tmp_path / "cache",
            check_signature=services.signing.check_loadable,
        )
        with pytest.raises(PermissionDenied, match="churn/1 is not signed .* before loading"):
            loader.load(services.catalog.get_version(unsigned))
        services.signing.create_key("platform")
        signed = register(services)
        services.catalog.transition_stage(signed, "staging")
        assert services.catalog.transition_stage(signed, "production").stage.value == "production"
        services.endpoints.create("churn", routes=[TargetRequest.parse(f"{signed}=100")])
        assert loader.load(services.catalog.get_version(signed)).ref == signed
        # a signature for other bytes is caught by the SDK's verify, not trusted blindly
        with services.db.write() as conn:
            conn.execute(update(t.version_signatures).values(package_digest="f" * 64))
        with pytest.raises(IntegrityError, match="covers package ffffffffffff"):
            Yard(LocalBackend(services)).models.verify(signed)
        with pytest.raises(IntegrityError, match="covers package ffffffffffff"):
            loader.load(services.catalog.get_version(signed))
    finally:
        services.close()
