"""The model package format: flavors, signatures, manifest, verification."""

from __future__ import annotations

from modelyard.packaging.flavors import FLAVORS, Flavor, flavor_for, get_flavor
from modelyard.packaging.package import (
    LoadedModel,
    Manifest,
    load_package,
    package_digest,
    read_manifest,
    upload_order,
    verify_package,
    write_package,
)
from modelyard.packaging.signature import ColumnSpec, Signature, enforce, infer_signature

__all__ = [
    "FLAVORS",
    "ColumnSpec",
    "Flavor",
    "LoadedModel",
    "Manifest",
    "Signature",
    "enforce",
    "flavor_for",
    "get_flavor",
    "infer_signature",
    "load_package",
    "package_digest",
    "read_manifest",
    "upload_order",
    "verify_package",
    "write_package",
]
