"""Reflex configuration. Every value that depends on the environment comes from hms_app.settings."""

import os
import socket

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from hms_app import settings

if settings.WORKERS > 1 and not settings.REDIS_URL:
    raise SystemExit(f"HMS_WORKERS={settings.WORKERS} needs REFLEX_REDIS_URL: workers share Reflex's state "
                     "and the live hub's rooms through Redis (one worker runs without it).")
# Reflex has no setting for the worker count: granian reads GRANIAN_WORKERS, and would start
# 2 * CPUs + 1 workers whenever Redis is set. HMS_WORKERS decides, so the pools are sized right.
os.environ["GRANIAN_WORKERS"] = str(settings.WORKERS)



def _ipv6_listens() -> bool:
    """Whether this machine can listen on IPv6 (a container may have it switched off)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


config = rx.Config(
    app_name="hms_app",
    telemetry_enabled=False,
    frontend_port=settings.PORT,
    backend_port=settings.PORT,
    # The front end's backend address. Reflex's front end swaps a "localhost" host for the
    # page's own (getBackendURL in .web/utils/state.js), so the default local run's
    # http://localhost:PORT reaches the backend from 127.0.0.1 and [::1] too.
    api_url=settings.PUBLIC_URL,
    deploy_url=settings.PUBLIC_URL,
    # The websocket and CORS accept only the app's own origin(s) (Reflex's default is "*"):
    # HMS_PUBLIC_URL's, or every loopback name for a local run (settings.ALLOWED_ORIGINS).
    cors_allowed_origins=settings.ALLOWED_ORIGINS,
    # A local run answers at [::1] too: "::" listens on IPv6 and IPv4 alike, where IPv6 exists
    # (otherwise, and behind HMS_PUBLIC_URL, Reflex's default, 0.0.0.0).
    **({"backend_host": "::"} if not settings.PUBLIC_URL_SET and _ipv6_listens() else {}),
    trusted_proxy_hops=settings.TRUSTED_PROXY_HOPS,
    state_manager_mode="redis" if settings.REDIS_URL else "memory",
    redis_url=settings.REDIS_URL or None,
    show_built_with_reflex=False,
    default_color_mode="light",
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="indigo", gray_color="slate", radius="medium", appearance="light")
        )
    ],
    disable_plugins=[SitemapPlugin],
)
