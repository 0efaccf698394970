"""Interoperability pages: admin's API clients of the FHIR API, and the patient's record downloads."""

from __future__ import annotations

import reflex as rx

from hms_app.components.badges import status_badge
from hms_app.components.dialogs import action_button, dialog
from hms_app.components.forms import field, form_error, select_field
from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.services.core.language import N_
from hms_app.services.interop.api_clients import ApiClientRow
from hms_app.state.interop import ApiClientsState, RecordExportState

SCOPE_OPTIONS = [("patient", N_("One patient's record")), ("all", N_("All patients' records"))]


def _token_dialog() -> rx.Component:
    s = ApiClientsState
    return dialog(
        t("API token for {name}", name=s.issued_name),
        description=rx.vstack(
            rx.text(t("Copy this token into the other system now. It is shown only once: the hospital "
                      "keeps only a fingerprint of it. If it is lost, revoke the client and issue a new one.")),
            rx.code(s.issued_token, size="3", id="issued-token", word_break="break-all"),
            spacing="3",
        ),
        buttons=[action_button(t("I have copied it"), s.dismiss_token)],
        open=s.issued_token != "",
        alert=True,
    )


def _client_row(c: ApiClientRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(c.name),
        rx.table.cell(c.scope, rx.cond(c.patient != "", rx.text(c.patient, size="1", color="var(--gray-11)"),
                                       rx.fragment())),
        rx.table.cell(rx.code(c.token_hint)),
        rx.table.cell(c.created),
        rx.table.cell(c.last_used),
        rx.table.cell(status_badge(t(c.status), active=c.status == "Active")),
        rx.table.cell(rx.cond(
            c.status == "Active",
            rx.button(t("Revoke"), size="1", color_scheme="red", variant="soft",
                      on_click=ApiClientsState.revoke_client(c.id), aria_label=t("Revoke {name}", name=c.name)),
            rx.fragment(),
        )),
    )


def api_clients_page() -> rx.Component:
    s = ApiClientsState
    return page_shell(
        N_("API clients"),
        rx.text(t("Other hospitals' systems read patient records through the FHIR R4 API at /fhir with a bearer "
                  "token issued here. A client reads one patient's record or every patient's; every read is "
                  "recorded in the audit trail."), color="var(--gray-11)"),
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading(t("Issue a client"), as_="h2", size="4"),
                    rx.hstack(
                        rx.box(field(N_("Client name"), "name", required=True, field_id="api-client-name",
                                     hint=N_("The system that will use it, e.g. Riverside GP practice")), flex="2",
                               min_width="14rem"),
                        rx.box(select_field(N_("Reads"), "scope", SCOPE_OPTIONS, field_id="api-client-scope",
                                            on_change=s.choose_scope), flex="1", min_width="12rem"),
                        rx.cond(s.scope == "patient",
                                rx.box(field(N_("Patient's medical record number"), "patient_mrn",
                                             field_id="api-client-mrn", placeholder="MRN-000001"),
                                       flex="1", min_width="12rem"),
                                rx.fragment()),
                        align="end",
                        wrap="wrap",
                        spacing="3",
                        width="100%",
                    ),
                    rx.button(t("Issue client"), type="submit"),
                    spacing="3",
                    width="100%",
                ),
                on_submit=s.issue_client,
                reset_on_submit=True,
            ),
            form_error(s.form_error),
            width="100%",
        ),
        rx.cond(
            s.rows.length() > 0,
            rx.table.root(
                rx.el.caption(t("API clients, newest first"), class_name="visually-hidden"),
                rx.table.header(rx.table.row(
                    *[rx.table.column_header_cell(t(title), scope="col")
                      for title in (N_("Name"), N_("Reads"), N_("Token starts"), N_("Issued"), N_("Last used"),
                                    N_("Status"), N_("Actions"))],
                )),
                rx.table.body(rx.foreach(s.rows, _client_row)),
                variant="surface",
                width="100%",
            ),
            rx.callout(t("No API clients yet."), icon="info", color_scheme="gray"),
        ),
        _token_dialog(),
    )


def record_downloads() -> rx.Component:
    """The patient's two downloads of their whole record (on the health record page)."""
    return rx.card(
        rx.vstack(
            rx.heading(t("Download my record"), as_="h2", size="4"),
            rx.text(t("Your whole record: visits, diagnoses, allergies, results, medicines and invoices. The PDF is "
                      "for reading and printing; the FHIR file is for another hospital's or doctor's system."),
                    color="var(--gray-11)"),
            rx.hstack(
                rx.button(rx.icon("file-text", size=16, aria_hidden="true"), t("PDF summary"),
                          on_click=RecordExportState.download_summary, id="download-record-pdf"),
                rx.button(rx.icon("file-json", size=16, aria_hidden="true"), t("FHIR file (JSON)"), variant="soft",
                          on_click=RecordExportState.download_bundle, id="download-record-fhir"),
                spacing="3",
                wrap="wrap",
            ),
            spacing="3",
        ),
        width="100%",
    )
