"""The FHIR R4 read API over HTTP, mounted at ``/fhir`` by ``hms_app.py``.

Thin Starlette endpoints: each authenticates the bearer token and makes one service call in
``hms_app.services.interop.api_clients``; the services check the client's scope and audit the read.
Endpoints are plain functions, so Starlette runs them in its thread pool, off the event loop.

=================================  ============================================
``GET /fhir/metadata``             the CapabilityStatement (no token needed)
``GET /fhir/{type}/{id}``          one resource
``GET /fhir/{type}?patient={id}``  a page of one patient's resources of a type
``GET /fhir/Patient/{id}/$everything``  the whole record, paged (``_count``, ``_offset``)
``GET /fhir/Binary/lab-report-{order}``  a lab report file
=================================  ============================================

Answers: 401 without a valid token, 403 outside the client's scope, 404 for what does not
exist, 400 for bad parameters, 429 with ``Retry-After`` from an address that sent too many bad
tokens (``services.core.throttle``), each with an OperationOutcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.http_headers import client_address
from hms_app.services.core import files
from hms_app.services.core.errors import (
    NotFound,
    PermissionDenied,
    SessionExpired,
    TooManyAttempts,
    ValidationError,
)
from hms_app.services.interop import api_clients, fhir

BASE_PATH = "/fhir"


def base_url() -> str:
    """The API's address as links in its answers give it: the app's one public address."""
    return f"{settings.PUBLIC_URL}{BASE_PATH}"


def fhir_response(content: dict, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(content, ensure_ascii=False), status_code=status_code,
                    media_type=fhir.FHIR_JSON, headers=headers)


def outcome(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = fhir.validated({"resourceType": "OperationOutcome",
                           "issue": [{"severity": "error", "code": code, "diagnostics": message}]})
    if status_code == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="fhir"'}
    return fhir_response(body, status_code, headers)


def _answer(request: Request, work: Callable[..., Any]) -> Response:
    """Authenticate, run ``work(session, caller)`` and turn the services' errors into HTTP answers."""
    ip = client_address(request.scope)
    try:
        with session_scope() as session:
            caller = api_clients.authenticate_client(session=session, ip_address=ip,
                                                     authorization=request.headers.get("authorization", ""))
            result = work(session, caller)
    except TooManyAttempts as error:
        return outcome(429, "throttled", error.message, {"Retry-After": str(error.retry_after)})
    except SessionExpired as error:
        return outcome(401, "login", error.message)
    except PermissionDenied as error:
        return outcome(403, "forbidden", error.message)
    except NotFound as error:
        return outcome(404, "not-found", error.message)
    except ValidationError as error:
        return outcome(400, "invalid", error.message)
    if isinstance(result, api_clients.BinaryContent):
        return Response(result.data, media_type=result.content_type, headers={
            "Content-Disposition": files.content_disposition(result.file_name), "Cache-Control": "no-store"})
    return fhir_response(result, headers={"Cache-Control": "no-store"})


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params.items())


def metadata(_request: Request) -> Response:
    return fhir_response(fhir.capability_statement(base_url()))


def search_type(request: Request) -> Response:
    resource_type = request.path_params["type"]
    query = request.url.query
    self_url = f"{base_url()}/{resource_type}"
    # The page's own links carry the search, not the paging it asked for.
    kept = "&".join(part for part in query.split("&") if part and not part.startswith(("_count=", "_offset=")))
    if kept:
        self_url += f"?{kept}"
    return _answer(request, lambda session, caller: api_clients.search(
        session=session, caller=caller, resource_type=resource_type, params=_params(request),
        base_url=base_url(), self_url=self_url))


def read_instance(request: Request) -> Response:
    resource_type, resource_id = request.path_params["type"], request.path_params["id"]
    if resource_type == "Binary":
        return _answer(request, lambda session, caller: api_clients.read_binary(
            session=session, caller=caller, binary_id=resource_id))
    return _answer(request, lambda session, caller: api_clients.read_resource(
        session=session, caller=caller, resource_type=resource_type, resource_id=resource_id, base_url=base_url()))


def patient_everything(request: Request) -> Response:
    return _answer(request, lambda session, caller: api_clients.everything(
        session=session, caller=caller, patient_id=request.path_params["id"], params=_params(request),
        base_url=base_url()))


routes = [
    Route("/metadata", metadata, methods=["GET"]),
    Route("/Patient/{id}/$everything", patient_everything, methods=["GET"]),
    Route("/{type}/{id}", read_instance, methods=["GET"]),
    Route("/{type}", search_type, methods=["GET"]),
]

mount = Mount(BASE_PATH, routes=routes)
"""Add to the app's Starlette routes: ``Starlette(routes=[..., fhir_routes.mount])``."""
