"""Interoperability: admin's API clients of the FHIR API, and the patient's record downloads."""

from __future__ import annotations

import asyncio
import json

import reflex as rx

from hms_app.services.core.language import _
from hms_app.services.interop import api_clients, fhir, record_summary
from hms_app.services.interop.api_clients import ApiClientRow
from hms_app.state.auth import SessionState, file_download
from hms_app.state.forms import form_text


class ApiClientsState(SessionState):
    """Issue and revoke API clients; a new token is shown once, until dismissed."""

    rows: list[ApiClientRow] = []
    scope: str = "patient"
    issued_name: str = ""
    issued_token: str = ""
    form_error: str = ""

    async def _fetch(self):
        answer = await self._act(api_clients.list_api_clients, write=False)
        if not answer.refused:
            self.rows = answer.result
        return answer

    @rx.event
    async def load_clients(self):
        return await self._fetch()

    @rx.event
    def choose_scope(self, scope: str):
        self.scope = scope if scope in api_clients.SCOPES else "patient"

    @rx.event
    async def issue_client(self, form_data: dict):
        answer = await self._act(
            api_clients.issue_api_client, name=form_text(form_data, "name", 200),
            scope=form_text(form_data, "scope", 20), patient_mrn=form_text(form_data, "patient_mrn", 40),
            refresh=self._fetch,
            success=lambda issued: _("API client {name} issued. Copy its token now: it is shown only once.").format(
                name=issued.name))
        self.form_error = answer.error
        if not answer.refused:
            self.issued_name, self.issued_token = answer.result.name, answer.result.token
        return answer

    @rx.event
    async def revoke_client(self, client_id: int):
        return await self._act(api_clients.revoke_api_client, client_id=client_id, refresh=self._fetch,
                               success=_("API client revoked; its token no longer works."))

    @rx.event
    def dismiss_token(self):
        self.issued_token = ""
        self.issued_name = ""


class RecordExportState(SessionState):
    """The patient's own record, downloaded as a FHIR Bundle or a PDF summary (nothing kept in state)."""

    @rx.event
    async def download_bundle(self):
        answer = await self._act(fhir.export_my_record)
        if answer.refused:
            return answer
        data = (await asyncio.to_thread(json.dumps, answer.result, ensure_ascii=False, indent=2)).encode()
        return rx.download(data=data, filename="health-record.fhir.json", mime_type=fhir.FHIR_JSON)

    @rx.event
    async def download_summary(self):
        return await self._act(record_summary.my_record_pdf, success=file_download)
