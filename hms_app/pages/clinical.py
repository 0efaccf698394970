"""The doctor's chart and encounter pages, and the patient's history."""

from __future__ import annotations

import reflex as rx

from hms_app.components.charts import plotly_chart
from hms_app.components.forms import field, request_key_field, select_field, submit_button
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table
from hms_app.pages.interop import record_downloads
from hms_app.services.care.clinical import AllergyRow, DiagnosisOption, ProblemRow, TimelineEntry
from hms_app.services.care.prescribing import FREQUENCIES, ROUTES, LabTestOption, OrderedItem
from hms_app.services.reference.icd10 import ICD10
from hms_app.state.clinical import (
    ChartState,
    EncounterState,
    PatientHistoryState,
)

UPLOAD_ID = "chart-document"


def _item(label: str, value: rx.Var) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label, min_width="9rem"),
        rx.data_list.value(rx.cond(value != "", value, rx.text("not recorded", color="var(--gray-11)"))),
    )


def _card(title: str, *children: rx.Component, **props) -> rx.Component:
    return rx.card(rx.heading(title, as_="h2", size="4", margin_bottom="0.75rem"), *children, width="100%", **props)


def _textarea(label: str, name: str, value: rx.Var, *, rows: str = "3") -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=f"enc-{name}", font_weight="500", font_size="0.9rem"),
        rx.text_area(id=f"enc-{name}", name=name, default_value=value, rows=rows, width="100%", max_length=10000),
        spacing="1", width="100%",
    )


# --- chart -------------------------------------------------------------------------------------


def _allergy_row(a: AllergyRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(a.substance),
        rx.table.cell(a.reaction), rx.table.cell(a.severity),
        rx.table.cell(rx.cond(a.status == "active",
                              rx.button("Resolve", size="1", variant="soft", on_click=ChartState.resolve_allergy(a.id),
                                        aria_label="Resolve allergy to " + a.substance),
                              rx.badge("resolved", color_scheme="gray"))),
    )


def _problem_row(p: ProblemRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(p.description), rx.table.cell(p.icd10_code), rx.table.cell(p.recorded),
        rx.table.cell(rx.cond(p.status == "active",
                              rx.button("Resolve", size="1", variant="soft", on_click=ChartState.resolve_problem(p.id),
                                        aria_label="Resolve " + p.description),
                              rx.badge("resolved", color_scheme="gray"))),
    )


def _small_table(headers: list[str], rows: rx.Var, render, caption: str, empty: str) -> rx.Component:
    return rx.cond(
        rows.length() > 0,
        rx.box(rx.table.root(
            rx.el.caption(caption, class_name="visually-hidden"),
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in headers])),
            rx.table.body(rx.foreach(rows, render)), size="1", width="100%"), overflow_x="auto", width="100%"),
        rx.text(empty, color="var(--gray-11)", size="2"),
    )


def _icd10_datalist() -> rx.Component:
    return rx.el.datalist(*[rx.el.option(f"{code} — {text}", value=code) for code, text in ICD10.items()],
                          id="icd10-codes")


def _timeline_row(t: TimelineEntry) -> rx.Component:
    return rx.table.row(
        rx.table.cell(t.when, white_space="nowrap"),
        rx.table.row_header_cell(t.title),
        rx.table.cell(t.detail),
        rx.table.cell(t.status),
        rx.table.cell(rx.cond(t.kind == "document",
                              rx.button("Download", size="1", variant="soft", on_click=ChartState.download_document(t.id),
                                        aria_label="Download " + t.title), rx.fragment())),
    )


def _chart_body() -> rx.Component:
    c = ChartState.chart
    return rx.vstack(
        rx.cond(c.via_break_glass, rx.callout("Opened by breaking the glass: this access is recorded and reviewed.",
                                             icon="shield-alert", color_scheme="amber", width="100%"), rx.fragment()),
        _card("Patient", rx.text(c.full_name, weight="bold", size="5", id="chart-name"),
              rx.text(c.mrn, " · ", c.sex, " · age ", c.age, color="var(--gray-11)", margin_bottom="0.5rem"),
              rx.data_list.root(_item("Birth date", c.birth_date), _item("Phone", c.phone), _item("Address", c.address),
                                _item("Emergency contact", c.emergency_contact), _item("Insurance", c.insurance),
                                orientation=rx.breakpoints(initial="vertical", sm="horizontal"))),
        rx.grid(
            _card("Allergies",
                  _small_table(["Substance", "Reaction", "Severity", ""], c.allergies, _allergy_row, "Allergies",
                               "No known allergies recorded."),
                  rx.form(rx.grid(
                      field("Substance", "substance", required=True, field_id="allergy-substance",
                            placeholder="e.g. penicillin"),
                      field("Reaction", "reaction", field_id="allergy-reaction", placeholder="e.g. hives"),
                      select_field("Severity", "severity", [("mild", "Mild"), ("moderate", "Moderate"), ("severe", "Severe")],
                                   field_id="allergy-severity", default="moderate"),
                      rx.button("Add allergy", type="submit"),
                      columns="2", spacing="2", align="end", margin_top="0.75rem"),
                      on_submit=ChartState.add_allergy, reset_on_submit=True)),
            _card("Problem list",
                  _small_table(["Problem", "ICD-10", "Since", ""], c.problems, _problem_row, "Problem list",
                               "No problems recorded."),
                  rx.form(rx.grid(
                      field("Problem", "description", required=True, field_id="problem-description"),
                      field("ICD-10 code", "icd10_code", field_id="problem-icd10", list="icd10-codes",
                            hint="Optional; pick from the list."),
                      rx.button("Add problem", type="submit"),
                      columns="2", spacing="2", align="end", margin_top="0.75rem"),
                      on_submit=ChartState.add_problem, reset_on_submit=True)),
            columns=rx.breakpoints(initial="1", lg="2"), spacing="4", width="100%",
        ),
        _card("Vitals trend",
              rx.cond(c.vitals.length() > 0, plotly_chart(ChartState.vitals, width="100%"),
                      rx.text("No vitals recorded yet; they are entered in the encounter.", color="var(--gray-11)"))),
        _card("Add a document",
              rx.text("PDF, PNG or JPEG, at most 10 MB; stored encrypted.", size="2", color="var(--gray-11)"),
              rx.hstack(
                  rx.el.label(
                      rx.text.span("Document file", class_name="visually-hidden"),
                      rx.upload(rx.button("Choose file", variant="soft", type="button"),
                                id=UPLOAD_ID, max_files=1, multiple=False, border="1px dashed var(--gray-7)",
                                padding="0.5rem",
                                accept={"application/pdf": [".pdf"], "image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"]}),
                  ),
                  rx.text(rx.selected_files(UPLOAD_ID).join(", "), size="2"),
                  rx.button("Upload", on_click=ChartState.upload_document(rx.upload_files(upload_id=UPLOAD_ID))),
                  align="center", wrap="wrap", spacing="3", margin_top="0.5rem"),
              ),
        rx.heading("Timeline", as_="h2", size="4"),
        data_table(ChartState, caption="Encounters, prescriptions, lab orders and documents, newest first",
                   columns=[("", "When"), ("", "What"), ("", "Details"), ("", "Status"), ("", "")],
                   rows=ChartState.rows, render_row=_timeline_row,
                   empty="Nothing in the record yet. Encounters, prescriptions, tests and documents appear here."),
        _icd10_datalist(),
        spacing="4", width="100%",
    )


def chart_page() -> rx.Component:
    return page_shell(
        "Patient chart",
        rx.cond(
            ChartState.needs_break_glass,
            _card("This patient is not under your care",
                  rx.text("In an emergency you may open the chart by breaking the glass. Your reason is recorded, "
                          "and administrators review every such access.", margin_bottom="0.75rem"),
                  rx.form(rx.vstack(
                      field("Reason", "reason", required=True, field_id="break-glass-reason",
                            hint="At least 10 characters, e.g. 'Unconscious patient in A&E, no GP record'."),
                      rx.button("Break the glass and open the chart", type="submit", color_scheme="red"),
                      spacing="2"), on_submit=ChartState.break_glass)),
            rx.cond(ChartState.missing,
                    rx.callout("This chart is not available. Open patients from your appointments list.",
                               icon="info", color_scheme="gray", width="100%"),
                    _chart_body()),
        ),
    )


# --- encounter ---------------------------------------------------------------------------------


def _warning(text: rx.Var) -> rx.Component:
    return rx.el.li(text)


def _ordered(o: OrderedItem) -> rx.Component:
    return rx.table.row(rx.table.cell(rx.cond(o.kind == "lab", "Lab test", "Medicine")),
                        rx.table.row_header_cell(o.text), rx.table.cell(o.status))


def _test_choice(t: LabTestOption) -> rx.Component:
    return rx.el.label(
        rx.checkbox(checked=EncounterState.chosen_tests.contains(t.id.to_string()),
                    on_change=lambda on: EncounterState.toggle_test(t.id.to_string(), on), aria_label=t.label),
        rx.text(t.label, size="2"),
        display="flex", gap="0.5rem", align_items="center",
    )


def _banner_allergy(a: AllergyRow) -> rx.Component:
    return rx.el.li(rx.text.strong(a.substance), rx.cond(a.reaction != "", " — " + a.reaction, ""),
                    " (" + a.severity + ")")


def _banner_problem(p: ProblemRow) -> rx.Component:
    return rx.el.li(p.description, rx.cond(p.icd10_code != "", " (" + p.icd10_code + ")", ""))


def _safety_banner() -> rx.Component:
    """The patient's active allergies and problems, kept in view while the doctor writes and prescribes."""
    e = EncounterState.encounter
    has_allergies = e.allergies.length() > 0
    return rx.box(
        rx.grid(
            rx.box(
                rx.heading("Allergies", as_="h2", size="2", margin_bottom="0.25rem"),
                rx.cond(has_allergies,
                        rx.el.ul(rx.foreach(e.allergies, _banner_allergy), margin="0", padding_left="1.1rem"),
                        rx.text("No known allergies", size="2")),
                id="banner-allergies",
            ),
            rx.box(
                rx.heading("Active problems", as_="h2", size="2", margin_bottom="0.25rem"),
                rx.cond(e.problems.length() > 0,
                        rx.el.ul(rx.foreach(e.problems, _banner_problem), margin="0", padding_left="1.1rem"),
                        rx.text("None recorded; add them on the chart.", size="2")),
                id="banner-problems",
            ),
            columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%",
        ),
        id="encounter-banner", role="region", aria_label="Allergies and active problems",
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
        rx.el.label("ICD-10 code", html_for="enc-icd10-search", font_weight="500", font_size="0.9rem"),
        rx.cond(s.icd10_code != "",
                rx.hstack(rx.text(s.icd10_label, size="2", weight="medium", id="enc-icd10-chosen"),
                          rx.button("Remove code", type="button", size="1", variant="soft", on_click=s.clear_icd10,
                                    aria_label="Remove code " + s.icd10_code),
                          align="center", wrap="wrap", spacing="2"),
                rx.text("No code chosen: the diagnosis is kept as free text.", size="2", color="var(--gray-11)",
                        id="enc-icd10-chosen")),
        rx.input(id="enc-icd10-search", type="search", placeholder="Search by code or words, e.g. I20 or angina",
                 on_change=s.search_icd10.debounce(250), auto_complete="off", width="100%",
                 aria_describedby="enc-icd10-hint", aria_controls="enc-icd10-results"),
        rx.text("Type a code or words; every word must match. Pick a match with Tab and Enter.", id="enc-icd10-hint",
                size="1", color="var(--gray-11)"),
        rx.box(
            rx.cond(s.icd10_options.length() > 0,
                    rx.el.ul(rx.foreach(s.icd10_options, _icd10_option), id="enc-icd10-options",
                             aria_label="Matching ICD-10 codes", margin="0", padding="0.25rem", max_height="16rem",
                             overflow_y="auto", border="1px solid var(--gray-6)", border_radius="var(--radius-2)",
                             width="100%"),
                    rx.cond(s.icd10_term.strip() != "",
                            rx.text("No code matches; leave the code empty to keep a free-text diagnosis.", size="2",
                                    color="var(--gray-11)"),
                            rx.fragment())),
            id="enc-icd10-results", aria_live="polite", width="100%"),
        spacing="1", width="100%", align="stretch",
    )


def _duplicate(text: rx.Var) -> rx.Component:
    return rx.el.li(text)


def _vital(label: str, name: str, value: rx.Var) -> rx.Component:
    return field(label, name, field_id=f"vital-{name}", default_value=value, input_mode="decimal")


def encounter_page() -> rx.Component:
    e = EncounterState.encounter
    completed = e.status == "completed"
    return page_shell(
        "Encounter",
        rx.cond(EncounterState.missing,
                rx.callout("This encounter is not available. Open it from a confirmed appointment.", icon="info",
                           color_scheme="gray", width="100%"),
                rx.vstack(
                    rx.card(rx.hstack(
                        rx.vstack(rx.link(e.patient_name, href="/doctor/patient?id=" + e.patient_id.to_string(),
                                          weight="bold", size="5"),
                                  rx.text(e.mrn, " · ", e.when, " · ", e.reason, color="var(--gray-11)"), spacing="1"),
                        rx.spacer(),
                        rx.badge(rx.cond(completed, "Completed", "Open"), size="2", high_contrast=True,
                                 color_scheme=rx.cond(completed, "indigo", "grass")),
                        width="100%", align="center", wrap="wrap"), width="100%"),
                    _safety_banner(),
                    _card("Notes, diagnosis and vitals", rx.form(rx.vstack(
                        rx.grid(_textarea("Subjective", "subjective", e.subjective),
                                _textarea("Objective", "objective", e.objective),
                                _textarea("Assessment", "assessment", e.assessment),
                                _textarea("Plan", "plan", e.plan),
                                columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%"),
                        rx.grid(field("Diagnosis", "diagnosis", field_id="enc-diagnosis", default_value=e.diagnosis),
                                _icd10_picker(),
                                columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%"),
                        rx.grid(_vital("Systolic BP (mmHg)", "bp_systolic", e.bp_systolic),
                                _vital("Diastolic BP (mmHg)", "bp_diastolic", e.bp_diastolic),
                                _vital("Pulse (/min)", "pulse", e.pulse),
                                _vital("Temperature (°C)", "temperature_c", e.temperature_c),
                                _vital("Weight (kg)", "weight_kg", e.weight_kg),
                                _vital("Height (cm)", "height_cm", e.height_cm),
                                _vital("SpO₂ (%)", "spo2", e.spo2),
                                columns=rx.breakpoints(initial="2", md="4"), spacing="3", width="100%"),
                        rx.button("Save notes and vitals", type="submit", disabled=completed),
                        spacing="3", width="100%"),
                        on_submit=EncounterState.save_notes, reset_on_submit=False, key=e.id.to_string())),
                    _card("Prescribe", rx.form(rx.vstack(
                        rx.grid(
                            rx.vstack(
                                rx.el.label("Medicine", html_for="rx-medicine", font_weight="500", font_size="0.9rem"),
                                rx.el.select(rx.el.option("Choose a medicine", value=""),
                                             rx.foreach(EncounterState.medicines,
                                                        lambda m: rx.el.option(m.label, value=m.id.to_string())),
                                             id="rx-medicine", name="medicine_id", required=True,
                                             class_name="native-select", width="100%",
                                             on_change=EncounterState.check_medicine),
                                spacing="1", width="100%"),
                            field("Dose", "dose", required=True, field_id="rx-dose", placeholder="e.g. 1 tablet"),
                            select_field("Route", "route", [(r, r.capitalize()) for r in ROUTES], field_id="rx-route"),
                            select_field("Frequency", "frequency", [(f, f.capitalize()) for f in FREQUENCIES],
                                         field_id="rx-frequency"),
                            field("Days", "days", type="number", required=True, field_id="rx-days", min=1, max=365),
                            field("Quantity", "quantity", type="number", field_id="rx-quantity", min=1,
                                  hint="Empty: computed from dose, frequency and days."),
                            columns=rx.breakpoints(initial="1", sm="2", lg="3"), spacing="3", width="100%"),
                        field("Instructions", "instructions", field_id="rx-instructions", placeholder="e.g. after food"),
                        rx.cond(EncounterState.warnings.length() > 0, rx.vstack(
                            rx.callout.root(
                                rx.callout.icon(rx.icon("triangle-alert")),
                                rx.el.ul(rx.foreach(EncounterState.warnings, _warning), margin="0", padding_left="1rem"),
                                color_scheme="red", role="alert", width="100%", id="rx-warnings"),
                            field("Reason to prescribe anyway", "override_reason", required=True, field_id="rx-override",
                                  hint="Stored with the prescription and shown to the pharmacist."),
                            width="100%"), rx.fragment()),
                        request_key_field(EncounterState.prescribe_key),
                        submit_button(rx.cond(EncounterState.warnings.length() > 0, "Override and sign",
                                              "Sign prescription"), disabled=completed),
                        spacing="3", width="100%"),
                        on_submit=EncounterState.prescribe, reset_on_submit=False)),
                    _card("Order lab tests", rx.form(rx.vstack(
                        rx.el.fieldset(rx.el.legend("Tests", font_weight="500"),
                                       rx.grid(rx.foreach(EncounterState.lab_tests, _test_choice),
                                               columns=rx.breakpoints(initial="1", md="2"), spacing="2"),
                                       border="none", padding="0", margin="0"),
                        rx.grid(select_field("Priority", "priority", [("routine", "Routine"), ("urgent", "Urgent"),
                                                                      ("stat", "Stat")], field_id="lab-priority"),
                                field("Note for the lab", "note", field_id="lab-note"),
                                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
                        rx.cond(EncounterState.duplicate_orders.length() > 0, rx.callout.root(
                            rx.callout.icon(rx.icon("copy")),
                            rx.vstack(rx.el.ul(rx.foreach(EncounterState.duplicate_orders, _duplicate), margin="0",
                                               padding_left="1rem"),
                                      rx.text("Order again? Press \u201cOrder again\u201d to confirm, or untick the test.",
                                              size="2"), spacing="1"),
                            color_scheme="amber", role="alert", width="100%", id="lab-duplicates"), rx.fragment()),
                        request_key_field(EncounterState.order_key),
                        submit_button(rx.cond(EncounterState.duplicate_orders.length() > 0, "Order again", "Order tests"),
                                      disabled=completed),
                        spacing="3", width="100%"),
                        on_submit=EncounterState.order_tests, reset_on_submit=False)),
                    _card("Ordered in this encounter",
                          _small_table(["Kind", "What", "Status"], EncounterState.orders, _ordered, "Orders",
                                       "Nothing prescribed or ordered yet.")),
                    rx.hstack(rx.spacer(), rx.button("Complete encounter", size="3", on_click=EncounterState.complete,
                                                     disabled=completed), width="100%"),
                    spacing="4", width="100%",
                )),
    )


# --- patient: my history -------------------------------------------------------------------------


def _history_row(t: TimelineEntry) -> rx.Component:
    return rx.table.row(
        rx.table.cell(t.when, white_space="nowrap"), rx.table.row_header_cell(t.title), rx.table.cell(t.detail),
        rx.table.cell(t.status),
        rx.table.cell(rx.cond(t.kind == "document",
                              rx.button("Download", size="1", variant="soft",
                                        on_click=PatientHistoryState.download_document(t.id),
                                        aria_label="Download " + t.title), rx.fragment())),
    )


def _my_allergy(a: AllergyRow) -> rx.Component:
    return rx.el.li(a.substance, rx.cond(a.reaction != "", " (" + a.reaction + ")", ""))


def patient_history_page() -> rx.Component:
    s = PatientHistoryState
    return page_shell(
        "My health record",
        record_downloads(),
        _card("Allergies", rx.cond(s.allergies.length() > 0, rx.el.ul(rx.foreach(s.allergies, _my_allergy)),
                                   rx.text("No allergies recorded. Tell your doctor about any you have.",
                                           color="var(--gray-11)"))),
        data_table(s, caption="Your visits, prescriptions, tests and documents, newest first",
                   columns=[("", "When"), ("", "What"), ("", "Details"), ("", "Status"), ("", "")],
                   rows=s.rows, render_row=_history_row,
                   empty="Nothing here yet. After your visits, diagnoses, prescriptions and results appear here."),
    )
