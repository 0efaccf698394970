"""The doctor's Patients page: search by name, MRN or birth date; own patients first."""

from __future__ import annotations

import reflex as rx

from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table, search_box
from hms_app.services.care.patient_search import PatientMatch
from hms_app.services.core.language import N_
from hms_app.state.patients import PatientSearchState


def _patient_row(p: PatientMatch) -> rx.Component:
    chart = "/doctor/patient?id=" + p.patient_id.to_string()
    return rx.table.row(
        rx.table.row_header_cell(
            rx.text(p.full_name, weight="medium"),
            rx.cond(p.own, rx.badge(t("Your patient"), color_scheme="green", variant="soft", high_contrast=True,
                                    margin_top="0.25rem"), rx.fragment()),
        ),
        rx.table.cell(p.mrn, white_space="nowrap"),
        rx.table.cell(p.born, white_space="nowrap"),
        rx.table.cell(
            rx.cond(
                p.own,
                rx.button(rx.link(t("Open chart"), href=chart, aria_label=t("Open chart of {name}", name=p.full_name)),
                          as_child=True, size="1", variant="soft"),
                rx.button(rx.link(t("Break the glass"), href=chart,
                                  aria_label=t("Break the glass for the chart of {name}", name=p.full_name)),
                          as_child=True, size="1", variant="outline", color_scheme="red"),
            ),
        ),
        data_patient=p.patient_id.to_string(),
    )


def patients_page() -> rx.Component:
    s = PatientSearchState
    return page_shell(
        N_("Patients"),
        rx.text(t("Your patients (anyone with an appointment with you) come first. Anyone else opens only by "
                  "breaking the glass with a reason, which is recorded and reviewed."), color="var(--gray-11)"),
        data_table(
            s,
            caption=N_("Patients found, your own first"),
            columns=[("name", N_("Name")), ("mrn", N_("Record number")), ("born", N_("Born")), ("", N_("Chart"))],
            rows=s.rows,
            render_row=_patient_row,
            empty=rx.cond(s.search == "",
                          t("You have no patients yet. Search for anyone by name, record number or birth date."),
                          t("No patient matches. Check the spelling, or search by record number or birth date.")),
            toolbar=search_box(s, N_("Search patients"), N_("Name, record number or birth date")),
        ),
    )
