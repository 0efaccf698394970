"""The doctor's chart and encounter pages, and the patient's history."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from hms_app.components.charts import plotly_chart
from hms_app.components.forms import field, request_key_field, select_field, submit_button
from hms_app.components.i18n import pt, t
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table
from hms_app.pages.interop import record_downloads
from hms_app.services.care.clinical import AllergyRow, DiagnosisOption, ProblemRow, TimelineEntry
from hms_app.services.care.prescribing import FREQUENCIES, ROUTES, LabTestOption, OrderedItem
from hms_app.services.core.language import N_
from hms_app.services.reference.icd10 import ICD10
from hms_app.state.clinical import (
    ChartState,
    EncounterState,
    PatientHistoryState,
)

UPLOAD_ID = "chart-document"
_ROUTE_LABELS = {"oral": N_("Oral"), "sublingual": N_("Sublingual"), "topical": N_("Topical"),
                 "inhaled": N_("Inhaled"), "intravenous": N_("Intravenous"), "intramuscular": N_("Intramuscular"),
                 "subcutaneous": N_("Subcutaneous"), "rectal": N_("Rectal")}
_FREQUENCY_LABELS = {"once daily": N_("Once daily"), "twice daily": N_("Twice daily"),
                     "three times daily": N_("Three times daily"), "four times daily": N_("Four times daily"),
                     "every 8 hours": N_("Every 8 hours"), "every 12 hours": N_("Every 12 hours"),
                     "at night": N_("At night"), "once weekly": N_("Once weekly")}
"""The prescription form's choices (``ROUTES``, ``FREQUENCIES``) in words; a new one reads capitalised."""


def _severity(value: rx.Var) -> rx.Var:
    """An allergy's severity (mild, moderate, severe) in words."""
    return rx.match(value, ("mild", t("mild")), ("moderate", t("moderate")), ("severe", t("severe")), value).to(str)


def _item(label: rx.Var, value: rx.Var) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label, min_width="9rem"),
        rx.data_list.value(rx.cond(value != "", value, rx.text(t("not recorded"), color="var(--gray-11)"))),
    )


def _card(title: rx.Var, *children: rx.Component, **props) -> rx.Component:
    return rx.card(rx.heading(title, as_="h2", size="4", margin_bottom="0.75rem"), *children, width="100%", **props)


def _textarea(label: rx.Var, name: str, value: rx.Var, *, rows: str = "3") -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=f"enc-{name}", font_weight="500", font_size="0.9rem"),
        rx.text_area(id=f"enc-{name}", name=name, default_value=value, rows=rows, width="100%", max_length=10000),
        spacing="1", width="100%",
    )


# --- chart -------------------------------------------------------------------------------------


def _allergy_row(a: AllergyRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(a.substance),
        rx.table.cell(a.reaction), rx.table.cell(_severity(a.severity)),
        rx.table.cell(rx.cond(a.status == "active",
                              rx.button(t("Resolve"), size="1", variant="soft",
                                        on_click=ChartState.resolve_allergy(a.id),
                                        aria_label=t("Resolve allergy to {substance}", substance=a.substance)),
                              rx.badge(t("resolved"), color_scheme="gray"))),
    )


def _problem_row(p: ProblemRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(p.description), rx.table.cell(p.icd10_code), rx.table.cell(p.recorded),
        rx.table.cell(rx.cond(p.status == "active",
                              rx.button(t("Resolve"), size="1", variant="soft",
                                        on_click=ChartState.resolve_problem(p.id),
                                        aria_label=t("Resolve {problem}", problem=p.description)),
                              rx.badge(t("resolved"), color_scheme="gray"))),
    )


def _small_table(headers: list[str], rows: rx.Var, render, caption: rx.Var, empty: rx.Var) -> rx.Component:
    """``headers``: ``N_``-marked column titles (an empty one for a column of buttons), shown translated."""
    return rx.cond(
        rows.length() > 0,
        rx.box(rx.table.root(
            rx.el.caption(caption, class_name="visually-hidden"),
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(t(h) if h else "", scope="col")
                                           for h in headers])),
            rx.table.body(rx.foreach(rows, render)), size="1", width="100%"), overflow_x="auto", width="100%"),
        rx.text(empty, color="var(--gray-11)", size="2"),
    )


def _icd10_datalist() -> rx.Component:
    return rx.el.datalist(*[rx.el.option(f"{code} — {text}", value=code) for code, text in ICD10.items()],
                          id="icd10-codes")


def _timeline_row(state) -> Callable[[TimelineEntry], rx.Component]:
    """How a row of a timeline reads (the doctor's chart, the patient's record); its documents
    download through ``state``."""
    def row(entry: TimelineEntry) -> rx.Component:
        return rx.table.row(
            rx.table.cell(entry.when, white_space="nowrap"),
            rx.table.row_header_cell(entry.title),
            rx.table.cell(entry.detail),
            rx.table.cell(entry.status),
            rx.table.cell(rx.cond(entry.kind == "document",
                                  rx.button(t("Download"), size="1", variant="soft",
                                            on_click=state.download_document(entry.id),
                                            aria_label=t("Download {title}", title=entry.title)), rx.fragment())),
        )
    return row


def _chart_body() -> rx.Component:
    c = ChartState.chart
    return rx.vstack(
        rx.cond(c.via_break_glass, rx.callout(t("Opened by breaking the glass: this access is recorded and reviewed."),
                                             icon="shield-alert", color_scheme="amber", width="100%"), rx.fragment()),
        _card(t("Patient"), rx.text(c.full_name, weight="bold", size="5", id="chart-name"),
              rx.text(t("{mrn} · {sex} · age {age}", mrn=c.mrn, sex=c.sex, age=c.age), color="var(--gray-11)",
                      margin_bottom="0.5rem"),
              rx.data_list.root(_item(t("Birth date"), c.birth_date), _item(t("Phone"), c.phone),
                                _item(t("Address"), c.address), _item(t("Emergency contact"), c.emergency_contact),
                                _item(t("Insurance"), c.insurance),
                                orientation=rx.breakpoints(initial="vertical", sm="horizontal"))),
        rx.grid(
            _card(t("Allergies"),
                  _small_table([N_("Substance"), N_("Reaction"), N_("Severity"), ""], c.allergies, _allergy_row,
                               t("Allergies"), t("No known allergies recorded.")),
                  rx.form(rx.grid(
                      field(N_("Substance"), "substance", required=True, field_id="allergy-substance",
                            placeholder=N_("e.g. penicillin")),
                      field(N_("Reaction"), "reaction", field_id="allergy-reaction", placeholder=N_("e.g. hives")),
                      select_field(N_("Severity"), "severity",
                                   [("mild", N_("Mild")), ("moderate", N_("Moderate")), ("severe", N_("Severe"))],
                                   field_id="allergy-severity", default="moderate"),
                      rx.button(t("Add allergy"), type="submit"),
                      columns="2", spacing="2", align="end", margin_top="0.75rem"),
                      on_submit=ChartState.add_allergy, reset_on_submit=True)),
            _card(t("Problem list"),
                  _small_table([N_("Problem"), N_("ICD-10"), N_("Since"), ""], c.problems, _problem_row,
                               t("Problem list"), t("No problems recorded.")),
                  rx.form(rx.grid(
                      field(N_("Problem"), "description", required=True, field_id="problem-description"),
                      field(N_("ICD-10 code"), "icd10_code", field_id="problem-icd10", list="icd10-codes",
                            hint=N_("Optional; pick from the list.")),
                      rx.button(t("Add problem"), type="submit"),
                      columns="2", spacing="2", align="end", margin_top="0.75rem"),
                      on_submit=ChartState.add_problem, reset_on_submit=True)),
            columns=rx.breakpoints(initial="1", lg="2"), spacing="4", width="100%",
        ),
        _card(t("Vitals trend"),
              rx.cond(c.vitals.length() > 0, plotly_chart(ChartState.vitals, width="100%"),
                      rx.text(t("No vitals recorded yet; they are entered in the encounter."),
                              color="var(--gray-11)"))),
        _card(t("Add a document"),
              rx.text(t("PDF, PNG or JPEG, at most 10 MB; stored encrypted."), size="2", color="var(--gray-11)"),
              rx.hstack(
                  rx.el.label(
                      rx.text.span(t("Document file"), class_name="visually-hidden"),
                      rx.upload(rx.button(t("Choose file"), variant="soft", type="button"),
                                id=UPLOAD_ID, max_files=1, multiple=False, border="1px dashed var(--gray-7)",
                                padding="0.5rem",
                                accept={"application/pdf": [".pdf"], "image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"]}),
                  ),
                  rx.text(rx.selected_files(UPLOAD_ID).join(", "), size="2"),
                  rx.button(t("Upload"), on_click=ChartState.upload_document(rx.upload_files(upload_id=UPLOAD_ID))),
                  align="center", wrap="wrap", spacing="3", margin_top="0.5rem"),
              ),
        rx.heading(t("Timeline"), as_="h2", size="4"),
        data_table(ChartState, caption=N_("Encounters, prescriptions, lab orders and documents, newest first"),
                   columns=[("", N_("When")), ("", N_("What")), ("", N_("Details")), ("", N_("Status")), ("", "")],
                   rows=ChartState.rows, render_row=_timeline_row(ChartState),
                   empty=N_("Nothing in the record yet. Encounters, prescriptions, tests and documents appear here.")),
        _icd10_datalist(),
        spacing="4", width="100%",
    )


def chart_page() -> rx.Component:
    return page_shell(
        t("Patient chart"),
        rx.cond(
            ChartState.needs_break_glass,
            _card(t("This patient is not under your care"),
                  rx.text(t("In an emergency you may open the chart by breaking the glass. Your reason is recorded, "
                            "and administrators review every such access."), margin_bottom="0.75rem"),
                  rx.form(rx.vstack(
                      field(N_("Reason"), "reason", required=True, field_id="break-glass-reason",
                            hint=N_("At least 10 characters, e.g. 'Unconscious patient in A&E, no GP record'.")),
                      rx.button(t("Break the glass and open the chart"), type="submit", color_scheme="red"),
                      spacing="2"), on_submit=ChartState.break_glass)),
            rx.cond(ChartState.missing,
                    rx.callout(t("This chart is not available. Open patients from your appointments list."),
                               icon="info", color_scheme="gray", width="100%"),
                    _chart_body()),
        ),
    )


# --- encounter ---------------------------------------------------------------------------------


def _warning(text: rx.Var) -> rx.Component:
    return rx.el.li(text)


def _ordered(o: OrderedItem) -> rx.Component:
    return rx.table.row(rx.table.cell(rx.cond(o.kind == "lab", t("Lab test"), t("Medicine"))),
                        rx.table.row_header_cell(o.text), rx.table.cell(o.status))


def _test_choice(test: LabTestOption) -> rx.Component:
    return rx.el.label(
        rx.checkbox(checked=EncounterState.chosen_tests.contains(test.id.to_string()),
                    on_change=lambda on: EncounterState.toggle_test(test.id.to_string(), on), aria_label=test.label),
        rx.text(test.label, size="2"),
        display="flex", gap="0.5rem", align_items="center",
    )


def _banner_allergy(a: AllergyRow) -> rx.Component:
    return rx.el.li(rx.text.strong(a.substance), rx.cond(a.reaction != "", " — " + a.reaction, ""),
                    " (", _severity(a.severity), ")")


def _banner_problem(p: ProblemRow) -> rx.Component:
    return rx.el.li(p.description, rx.cond(p.icd10_code != "", " (" + p.icd10_code + ")", ""))


def _safety_banner() -> rx.Component:
    """The patient's active allergies and problems, kept in view while the doctor writes and prescribes."""
    e = EncounterState.encounter
    has_allergies = e.allergies.length() > 0
    return rx.box(
        rx.grid(
            rx.box(
                rx.heading(t("Allergies"), as_="h2", size="2", margin_bottom="0.25rem"),
                rx.cond(has_allergies,
                        rx.el.ul(rx.foreach(e.allergies, _banner_allergy), margin="0", padding_left="1.1rem"),
                        rx.text(t("No known allergies"), size="2")),
                id="banner-allergies",
            ),
            rx.box(
                rx.heading(t("Active problems"), as_="h2", size="2", margin_bottom="0.25rem"),
                rx.cond(e.problems.length() > 0,
                        rx.el.ul(rx.foreach(e.problems, _banner_problem), margin="0", padding_left="1.1rem"),
                        rx.text(t("None recorded; add them on the chart."), size="2")),
                id="banner-problems",
            ),
            columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%",
        ),
        id="encounter-banner", role="region", aria_label=t("Allergies and active problems"),
        background=rx.cond(has_allergies, "var(--red-2)", "var(--gray-2)"),
        border=rx.cond(has_allergies, "2px solid var(--red-9)", "1px solid var(--gray-7)"),
        color="var(--gray-12)", border_radius="var(--radius-3)", padding="0.6rem 0.9rem", width="100%",
        position="sticky", top="0", z_index="5", box_shadow="0 2px 6px rgba(0, 0, 0, 0.08)", font_size="0.9rem",
    )


def _icd10_option(o: DiagnosisOption) -> rx.Component:
    return rx.el.li(rx.button(o.label, type="button", variant="ghost", size="2", on_click=EncounterState.pick_icd10(o.code),
                              width="100%", justify="start", text_align="left", white_space="normal", height="auto",
                              padding="0.35rem 0.5rem"),
                    list_style="none")


def _icd10_picker() -> rx.Component:
    """Search-as-you-type over ICD-10-CM: at most 20 matches to pick with the mouse or Tab and Enter."""
    s = EncounterState
    return rx.vstack(
        rx.el.label(t("ICD-10 code"), html_for="enc-icd10-search", font_weight="500", font_size="0.9rem"),
        rx.cond(s.icd10_code != "",
                rx.hstack(rx.text(s.icd10_label, size="2", weight="medium", id="enc-icd10-chosen"),
                          rx.button(t("Remove code"), type="button", size="1", variant="soft", on_click=s.clear_icd10,
                                    aria_label=t("Remove code {code}", code=s.icd10_code)),
                          align="center", wrap="wrap", spacing="2"),
                rx.text(t("No code chosen: the diagnosis is kept as free text."), size="2", color="var(--gray-11)",
                        id="enc-icd10-chosen")),
        rx.input(id="enc-icd10-search", type="search", placeholder=t("Search by code or words, e.g. I20 or angina"),
                 on_change=s.search_icd10.debounce(250), auto_complete="off", width="100%",
                 aria_describedby="enc-icd10-hint", aria_controls="enc-icd10-results"),
        rx.text(t("Type a code or words; every word must match. Pick a match with Tab and Enter."),
                id="enc-icd10-hint", size="1", color="var(--gray-11)"),
        rx.box(
            rx.cond(s.icd10_options.length() > 0,
                    rx.el.ul(rx.foreach(s.icd10_options, _icd10_option), id="enc-icd10-options",
                             aria_label=t("Matching ICD-10 codes"), margin="0", padding="0.25rem",
                             max_height="16rem",
                             overflow_y="auto", border="1px solid var(--gray-6)", border_radius="var(--radius-2)",
                             width="100%"),
                    rx.cond(s.icd10_term.strip() != "",
                            rx.text(t("No code matches; leave the code empty to keep a free-text diagnosis."),
                                    size="2", color="var(--gray-11)"),
                            rx.fragment())),
            id="enc-icd10-results", aria_live="polite", width="100%"),
        spacing="1", width="100%", align="stretch",
    )


def _duplicate(text: rx.Var) -> rx.Component:
    return rx.el.li(text)


def _vital(label: str, name: str, value: rx.Var) -> rx.Component:
    """``label``: ``N_``-marked (the field shows it translated)."""
    return field(label, name, field_id=f"vital-{name}", default_value=value, input_mode="decimal")


def encounter_page() -> rx.Component:
    e = EncounterState.encounter
    completed = e.status == "completed"
    return page_shell(
        t("Encounter"),
        rx.cond(EncounterState.missing,
                rx.callout(t("This encounter is not available. Open it from a confirmed appointment."), icon="info",
                           color_scheme="gray", width="100%"),
                rx.vstack(
                    rx.card(rx.hstack(
                        rx.vstack(rx.link(e.patient_name, href="/doctor/patient?id=" + e.patient_id.to_string(),
                                          weight="bold", size="5"),
                                  rx.text(e.mrn, " · ", e.when, " · ", e.reason, color="var(--gray-11)"), spacing="1"),
                        rx.spacer(),
                        rx.badge(rx.cond(completed, t("Completed"), pt("encounter status", "Open")), size="2", high_contrast=True,
                                 color_scheme=rx.cond(completed, "indigo", "grass")),
                        width="100%", align="center", wrap="wrap"), width="100%"),
                    _safety_banner(),
                    _card(t("Notes, diagnosis and vitals"), rx.form(rx.vstack(
                        rx.grid(_textarea(t("Subjective"), "subjective", e.subjective),
                                _textarea(t("Objective"), "objective", e.objective),
                                _textarea(t("Assessment"), "assessment", e.assessment),
                                _textarea(t("Plan"), "plan", e.plan),
                                columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%"),
                        rx.grid(field(N_("Diagnosis"), "diagnosis", field_id="enc-diagnosis",
                                      default_value=e.diagnosis),
                                _icd10_picker(),
                                columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%"),
                        rx.grid(_vital(N_("Systolic BP (mmHg)"), "bp_systolic", e.bp_systolic),
                                _vital(N_("Diastolic BP (mmHg)"), "bp_diastolic", e.bp_diastolic),
                                _vital(N_("Pulse (/min)"), "pulse", e.pulse),
                                _vital(N_("Temperature (°C)"), "temperature_c", e.temperature_c),
                                _vital(N_("Weight (kg)"), "weight_kg", e.weight_kg),
                                _vital(N_("Height (cm)"), "height_cm", e.height_cm),
                                _vital(N_("SpO₂ (%)"), "spo2", e.spo2),
                                columns=rx.breakpoints(initial="2", md="4"), spacing="3", width="100%"),
                        rx.button(t("Save notes and vitals"), type="submit", disabled=completed),
                        spacing="3", width="100%"),
                        on_submit=EncounterState.save_notes, reset_on_submit=False, key=e.id.to_string())),
                    _card(t("Prescribe"), rx.form(rx.vstack(
                        rx.grid(
                            rx.vstack(
                                rx.el.label(t("Medicine"), html_for="rx-medicine", font_weight="500",
                                            font_size="0.9rem"),
                                rx.el.select(rx.el.option(t("Choose a medicine"), value=""),
                                             rx.foreach(EncounterState.medicines,
                                                        lambda m: rx.el.option(m.label, value=m.id.to_string())),
                                             id="rx-medicine", name="medicine_id", required=True,
                                             class_name="native-select", width="100%",
                                             on_change=EncounterState.check_medicine),
                                spacing="1", width="100%"),
                            field(N_("Dose"), "dose", required=True, field_id="rx-dose",
                                  placeholder=N_("e.g. 1 tablet")),
                            select_field(N_("Route"), "route",
                                         [(r, _ROUTE_LABELS.get(r, r.capitalize())) for r in ROUTES],
                                         field_id="rx-route"),
                            select_field(N_("Frequency"), "frequency",
                                         [(f, _FREQUENCY_LABELS.get(f, f.capitalize())) for f in FREQUENCIES],
                                         field_id="rx-frequency"),
                            field(N_("Days"), "days", type="number", required=True, field_id="rx-days", min=1,
                                  max=365),
                            field(N_("Quantity"), "quantity", type="number", field_id="rx-quantity", min=1,
                                  hint=N_("Empty: computed from dose, frequency and days.")),
                            columns=rx.breakpoints(initial="1", sm="2", lg="3"), spacing="3", width="100%"),
                        field(N_("Instructions"), "instructions", field_id="rx-instructions",
                              placeholder=N_("e.g. after food")),
                        rx.cond(EncounterState.warnings.length() > 0, rx.vstack(
                            rx.callout.root(
                                rx.callout.icon(rx.icon("triangle-alert")),
                                rx.el.ul(rx.foreach(EncounterState.warnings, _warning), margin="0", padding_left="1rem"),
                                color_scheme="red", role="alert", width="100%", id="rx-warnings"),
                            field(N_("Reason to prescribe anyway"), "override_reason", required=True,
                                  field_id="rx-override",
                                  hint=N_("Stored with the prescription and shown to the pharmacist.")),
                            width="100%"), rx.fragment()),
                        request_key_field(EncounterState.prescribe_key),
                        submit_button(rx.cond(EncounterState.warnings.length() > 0, t("Override and sign"),
                                              t("Sign prescription")), disabled=completed),
                        spacing="3", width="100%"),
                        on_submit=EncounterState.prescribe, reset_on_submit=False)),
                    _card(t("Order lab tests"), rx.form(rx.vstack(
                        rx.el.fieldset(rx.el.legend(t("Tests"), font_weight="500"),
                                       rx.grid(rx.foreach(EncounterState.lab_tests, _test_choice),
                                               columns=rx.breakpoints(initial="1", md="2"), spacing="2"),
                                       border="none", padding="0", margin="0"),
                        rx.grid(select_field(N_("Priority"), "priority",
                                             [("routine", N_("Routine")), ("urgent", N_("Urgent")), ("stat", N_("Stat"))],
                                             field_id="lab-priority"),
                                field(N_("Note for the lab"), "note", field_id="lab-note"),
                                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
                        rx.cond(EncounterState.duplicate_orders.length() > 0, rx.callout.root(
                            rx.callout.icon(rx.icon("copy")),
                            rx.vstack(rx.el.ul(rx.foreach(EncounterState.duplicate_orders, _duplicate), margin="0",
                                               padding_left="1rem"),
                                      rx.text(t("Order again? Press \u201cOrder again\u201d to confirm, or untick the "
                                                "test."), size="2"), spacing="1"),
                            color_scheme="amber", role="alert", width="100%", id="lab-duplicates"), rx.fragment()),
                        request_key_field(EncounterState.order_key),
                        submit_button(rx.cond(EncounterState.duplicate_orders.length() > 0, t("Order again"),
                                              t("Order tests")), disabled=completed),
                        spacing="3", width="100%"),
                        on_submit=EncounterState.order_tests, reset_on_submit=False)),
                    _card(t("Ordered in this encounter"),
                          _small_table([N_("Kind"), N_("What"), N_("Status")], EncounterState.orders, _ordered,
                                       t("Orders"), t("Nothing prescribed or ordered yet."))),
                    rx.hstack(rx.spacer(), rx.button(t("Complete encounter"), size="3",
                                                     on_click=EncounterState.complete, disabled=completed),
                              width="100%"),
                    spacing="4", width="100%",
                )),
    )


# --- patient: my history -------------------------------------------------------------------------


def _my_allergy(a: AllergyRow) -> rx.Component:
    return rx.el.li(a.substance, rx.cond(a.reaction != "", " (" + a.reaction + ")", ""))


def patient_history_page() -> rx.Component:
    s = PatientHistoryState
    return page_shell(
        t("My health record"),
        record_downloads(),
        _card(t("Allergies"), rx.cond(s.allergies.length() > 0, rx.el.ul(rx.foreach(s.allergies, _my_allergy)),
                                      rx.text(t("No allergies recorded. Tell your doctor about any you have."),
                                              color="var(--gray-11)"))),
        data_table(s, caption=N_("Your visits, prescriptions, tests and documents, newest first"),
                   columns=[("", N_("When")), ("", N_("What")), ("", N_("Details")), ("", N_("Status")), ("", "")],
                   rows=s.rows, render_row=_timeline_row(s),
                   empty=N_("Nothing here yet. After your visits, diagnoses, prescriptions and results appear here.")),
    )
