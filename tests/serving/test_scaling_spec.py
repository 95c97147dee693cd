"""The scaling settings of an endpoint's spec (Ray Serve), and the local path without Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from modelyard.domain.endpoints import Batching, Spec, batching_from
from modelyard.errors import InvalidInput


def test_a_spec_stored_before_scaling_existed_reads_with_one_replica() -> None:
    old = {
        "routes": [{"model": "churn", "version": 3, "weight": 100}],
        "batching": {"max_batch_size": 8, "max_wait_ms": 0.0},
    }
    spec = Spec.from_dict(old)
    assert spec.batching == Batching(max_batch_size=8)
    assert (spec.batching.min_replicas, spec.batching.max_replicas) == (1, 1)
    again = Spec.from_dict(spec.to_dict())
    assert again == spec


def test_scaling_settings_change_only_what_they_name() -> None:
    base = Batching(max_batch_size=8)
    changed = batching_from({"max_replicas": 4, "target_ongoing_requests": 8}, base)
    assert changed == Batching(max_batch_size=8, max_replicas=4, target_ongoing_requests=8.0)
    stored = Spec.from_dict({"routes": [], "batching": {"min_replicas": 2, "max_replicas": 3}})
    assert (stored.batching.min_replicas, stored.batching.max_replicas) == (2, 3)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_replicas": 0}, "min_replicas must be between 1"),
        ({"min_replicas": 3}, "max_replicas must be between min_replicas (3)"),
        ({"max_replicas": 1000}, "max_replicas must be between min_replicas (1) and 256"),
        ({"target_ongoing_requests": 0}, "target_ongoing_requests must be above 0"),
        ({"upscale_delay_s": -1}, "upscale_delay_s must be between 0 and 3600 seconds, got -1"),
        ({"downscale_delay_s": 1e9}, "downscale_delay_s must be between 0 and 3600 seconds"),
        ({"downscale_delay_s": "soon"}, "batching settings must be numbers"),
        ({"replicas": 2}, "unknown batching setting(s): replicas"),
    ],
)
def test_bad_scaling_settings_are_refused_by_name(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        batching_from(settings)
    assert message in refused.value.message


IMPORT_LOCAL_SERVING = """
import json, sys
import modelyard.cli.main, modelyard.serving.server, modelyard.serving.inprocess
print(json.dumps(sorted(name for name in sys.modules if name == "ray" or name.startswith("ray."))))
"""


@pytest.mark.slow  # starts a process
def test_local_serving_does_not_import_ray() -> None:
    found = subprocess.run(
        [sys.executable, "-c", IMPORT_LOCAL_SERVING], capture_output=True, text=True, check=True
    )
    assert json.loads(found.stdout) == []


def test_one_deployment_for_several_endpoints_scales_to_the_most_any_asks_for() -> None:
    from modelyard.serving.rayserve import autoscaling_of

    scaling = autoscaling_of(
        [
            Batching(min_replicas=2, max_replicas=3, target_ongoing_requests=8),
            Batching(max_replicas=6, target_ongoing_requests=4, downscale_delay_s=300),
            Batching(target_ongoing_requests=5, upscale_delay_s=0.5, downscale_delay_s=5),
        ]
    )
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (2, 6)
    assert scaling["target_ongoing_requests"] == 4
    assert (scaling["upscale_delay_s"], scaling["downscale_delay_s"]) == (0.5, 300)


def test_the_delays_are_kept_in_the_spec_and_default_for_old_specs() -> None:
    changed = batching_from({"upscale_delay_s": 1, "downscale_delay_s": 5}, Batching())
    assert changed is not None
    assert (changed.upscale_delay_s, changed.downscale_delay_s) == (1.0, 5.0)
    assert Spec.from_dict(Spec([], batching=changed).to_dict()).batching == changed
    old = Spec.from_dict({"routes": [], "batching": {"max_replicas": 3}}).batching
    assert (old.upscale_delay_s, old.downscale_delay_s) == (3.0, 60.0)
