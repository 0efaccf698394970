"""Stored file names that once broke their download, fetched through the whole server.

A lab report kept as ``報告.pdf`` made ``/fhir/Binary/...`` fail with a UnicodeEncodeError in
its ``Content-Disposition``, and one kept as ``report\\n.pdf`` with granian's "Unsupported ASGI
message" and no security headers, while the audit said the download succeeded. Now both download
under an RFC 6266 header whose ``filename*`` (RFC 5987) carries the exact, cleaned name, and a
file that cannot be read is audited as a failed download.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import unquote

import pytest

from tests.e2e.file_name_seed import PDF, seed_on
from tests.e2e.helpers import db_rows


@pytest.fixture(scope="module")
def seeded(app_server) -> dict:
    return seed_on(app_server)


def _get(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _outcomes(app_server, order_id: int) -> list[str]:
    return [outcome for (outcome,) in db_rows(
        app_server.database_url, "SELECT outcome FROM audit_event WHERE action = 'fhir.binary' AND entity_id = ? "
        "ORDER BY id", (f"lab-report-{order_id}",))]


@pytest.mark.parametrize(("stored", "fallback", "exact"), [
    ("報告.pdf", "file.pdf", "報告.pdf"),
    ("report\n.pdf", "report.pdf", "report.pdf"),
])
def test_a_report_kept_under_an_awkward_name_downloads_through_the_server(app_server, seeded, stored, fallback,
                                                                          exact):
    order_id = seeded["orders"][stored]
    status, headers, body = _get(f"{app_server.url}/fhir/Binary/lab-report-{order_id}", seeded["token"])
    assert (status, body) == (200, PDF)
    disposition = headers["content-disposition"]
    assert disposition.isascii()
    assert not {"\n", "\r"} & set(disposition)
    assert f'filename="{fallback}"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == exact
    assert headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in headers
    assert _outcomes(app_server, order_id) == ["success"]


def test_a_report_missing_from_storage_is_refused_and_audited_as_a_failure(app_server, seeded):
    order_id = seeded["orders"]["missing.pdf"]
    status, headers, body = _get(f"{app_server.url}/fhir/Binary/lab-report-{order_id}", seeded["token"])
    assert status == 400
    assert headers["content-type"].startswith("application/fhir+json")
    assert b"missing from storage" in body
    assert _outcomes(app_server, order_id) == ["failed"]
