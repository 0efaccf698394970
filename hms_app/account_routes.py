"""The page a confirmation link opens, at ``/confirm-email``, mounted by ``hms_app.py``.

``GET /confirm-email?token=…`` shows a button and changes nothing, so a mail scanner that
fetches the link does not confirm the address; the button's ``POST`` to the same address
confirms it (``auth.confirm_email``) and says so. Plain HTML with no script: the page works
before the front end has loaded, and the token goes nowhere but back to this server.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from hms_app.db.engine import session_scope
from hms_app.http_headers import client_address, plain_page
from hms_app.services.administration import auth
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import _, preferred_language, use_language

PATH = "/confirm-email"


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    # No Referrer-Policy of its own: with_security_headers sets same-origin on every answer, so
    # the link's token never leaves for another site.
    return HTMLResponse(plain_page(title, body), status_code=status_code, headers={"Cache-Control": "no-store"})


def confirm_email_page(request: Request) -> HTMLResponse:
    # In the browser's language: the link is opened before its owner has logged in to choose one.
    with use_language(preferred_language(request.headers.get("accept-language"))):
        return _confirm_email(request)


def _confirm_email(request: Request) -> HTMLResponse:
    token = request.query_params.get("token", "")[:200]
    log_in = html.escape(_("Log in"))
    if request.method == "GET":
        action = html.escape(f"{PATH}?token={token}", quote=True)
        ask = html.escape(_("Confirm that this email address is yours to finish making your account."))
        button = html.escape(_("Confirm my email address"))
        return _page(_("Confirm your email address"),
                     f"<form method=\"post\" action=\"{action}\"><p>{ask}</p>"
                     f"<button type=\"submit\">{button}</button></form>")
    try:
        with session_scope() as session:
            auth.confirm_email(session=session, visitor=Anonymous(client_address(request.scope)), token=token)
    except ValidationError as error:
        again = html.escape(_("Register again"))
        return _page(_("This link does not work"), f"<p>{html.escape(error.message)}</p>"
                     f"<p><a href=\"/register\">{again}</a> · <a href=\"/login\">{log_in}</a></p>", 400)
    done = html.escape(_("Thank you. You can now log in with your email and password."))
    return _page(_("Your email address is confirmed"), f"<p>{done}</p><p><a href=\"/login\">{log_in}</a></p>")


route = Route(PATH, confirm_email_page, methods=["GET", "POST"])
