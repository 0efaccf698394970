"""Interoperability: admin's API clients of the FHIR API, and the patient's record downloads."""

from __future__ import annotations

import asyncio
import json

import reflex as rx

from hms_app.services.core.errors import HMSError
from hms_app.services.interop import api_clients, fhir, record_summary
from hms_app.services.interop.api_clients import ApiClientRow
from hms_app.state.auth import SessionState
from hms_app.state.forms import form_text


class ApiClientsState(SessionState):
    """Issue and revoke API clients; a new token is shown once, until dismissed."""

    rows: list[ApiClientRow] = []
    scope: str = "patient"
    issued_name: str = ""
    issued_token: str = ""
    form_error: str = ""

    async def _fetch(self):
        try:
            self.rows = await self._call(api_clients.list_api_clients, write=False)
        except HMSError as error:
            return await self._failure(error)
        return None

    @rx.event
    async def load_clients(self):
        return await self._fetch()

    @rx.event
    def choose_scope(self, scope: str):
        self.scope = scope if scope in api_clients.SCOPES else "patient"

    @rx.event
    async def issue_client(self, form_data: dict):
        try:
            issued = await self._call(api_clients.issue_api_client, name=form_text(form_data, "name", 200),
                                      scope=form_text(form_data, "scope", 20),
                                      patient_mrn=form_text(form_data, "patient_mrn", 40))
        except HMSError as error:
            self.form_error = error.message
            return await self._failure(error)
        self.form_error = ""
        self.issued_name, self.issued_token = issued.name, issued.token
        await self._fetch()
        return rx.toast.success(f"API client {issued.name} issued. Copy its token now: it is shown only once.")

    @rx.event
    async def revoke_client(self, client_id: int):
        try:
            await self._call(api_clients.revoke_api_client, client_id=client_id)
        except HMSError as error:
            return await self._failure(error)
        await self._fetch()
        return rx.toast.success("API client revoked; its token no longer works.")

    @rx.event
    def dismiss_token(self):
        self.issued_token = ""
        self.issued_name = ""


class RecordExportState(SessionState):
    """The patient's own record, downloaded as a FHIR Bundle or a PDF summary (nothing kept in state)."""

    @rx.event
    async def download_bundle(self):
        try:
            record = await self._call(fhir.export_my_record)
        except HMSError as error:
            return await self._failure(error)
        data = (await asyncio.to_thread(json.dumps, record, ensure_ascii=False, indent=2)).encode()
        return rx.download(data=data, filename="health-record.fhir.json", mime_type=fhir.FHIR_JSON)

    @rx.event
    async def download_summary(self):
        try:
            result = await self._call(record_summary.my_record_pdf)
        except HMSError as error:
            return await self._failure(error)
        return rx.download(data=result.data, filename=result.file_name, mime_type=result.content_type)
