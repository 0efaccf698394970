"""Reflex configuration. Every value that depends on the environment comes from hms_app.settings."""

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from hms_app import settings

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
