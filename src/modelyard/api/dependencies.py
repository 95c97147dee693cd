"""How routes reach the services the app factory wired."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from modelyard.bootstrap import Services


def services_of(request: Request) -> Services:
    return cast(Services, request.app.state.services)
