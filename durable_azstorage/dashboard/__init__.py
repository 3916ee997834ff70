"""The browser dashboard of a task hub, served at ``/dashboard/`` by ``serve``, ``run``,
``dashboard`` (and any aiohttp app through :func:`mount_dashboard`). See docs/dashboard.md."""

from ._app import DASHBOARD_PATH, mount_dashboard
from ._overview import HealthCheck, HealthFinding
from ._server import counted_account, create_dashboard_app, serve_dashboard

__all__ = [
    "DASHBOARD_PATH",
    "HealthCheck",
    "HealthFinding",
    "counted_account",
    "create_dashboard_app",
    "mount_dashboard",
    "serve_dashboard",
]
