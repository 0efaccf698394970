"""Reflex configuration. Every value that depends on the environment comes from hms_app.settings."""

import os

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from hms_app import settings

if settings.WORKERS > 1 and not settings.REDIS_URL:
    raise SystemExit(f"HMS_WORKERS={settings.WORKERS} needs REFLEX_REDIS_URL: workers share Reflex's state "
                     "and the live hub's rooms through Redis (one worker runs without it).")
# Reflex has no setting for the worker count: granian reads GRANIAN_WORKERS, and would start
# 2 * CPUs + 1 workers whenever Redis is set. HMS_WORKERS decides, so the pools are sized right.
os.environ["GRANIAN_WORKERS"] = str(settings.WORKERS)

config = rx.Config(
    app_name="hms_app",
    telemetry_enabled=False,
    frontend_port=settings.PORT,
    backend_port=settings.PORT,
    api_url=settings.PUBLIC_URL,
    deploy_url=settings.PUBLIC_URL,
    # The websocket and CORS accept only the app's own origin (Reflex's default is "*").
    cors_allowed_origins=[settings.PUBLIC_URL],
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
