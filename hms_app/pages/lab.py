"""The lab's worklist, and the lab results pages of the patient and the doctor."""

from __future__ import annotations

import reflex as rx

from hms_app.components.dialogs import close_button, dialog
from hms_app.components.forms import field, select_field
from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table
from hms_app.services.core.language import N_
from hms_app.services.laboratory.lab import (
    MAX_REVIEW_NOTE,
    ResultView,
    WorklistRow,
)
from hms_app.state.lab import LabResultsState, LabWorklistState


def _priority_text(priority: rx.Var) -> rx.Var:
    """An order's priority (its code: stat, urgent, routine) in the reader's words."""
    return rx.match(priority, ("stat", t("stat")), ("urgent", t("urgent")), ("routine", t("routine")), priority)


def _priority_badge(priority: rx.Var) -> rx.Component:
    return rx.badge(_priority_text(priority), high_contrast=True, variant="soft",
                    color_scheme=rx.match(priority, ("stat", "red"), ("urgent", "orange"), "gray"))


def _worklist_actions(r: WorklistRow) -> rx.Component:
    s = LabWorklistState
    entering = r.status_value == "in_progress"
    return rx.hstack(
        rx.cond(r.status_value == "requested",
                rx.button(t("Collect"), size="1", on_click=s.collect(r.id),
                          aria_label=t("Collect {test} for {patient}", test=r.test, patient=r.patient)),
                rx.fragment()),
        rx.cond(r.status_value == "collected",
                rx.button(t("Start"), size="1", on_click=s.start(r.id),
                          aria_label=t("Start {test} for {patient}", test=r.test, patient=r.patient)),
                rx.fragment()),
        rx.button(rx.cond(entering, t("Enter result"), t("Details")), size="1", variant="soft",
                  on_click=s.open_work(r.id),
                  aria_label=rx.cond(entering, t("Enter result: {test} for {patient}", test=r.test, patient=r.patient),
                                     t("Details: {test} for {patient}", test=r.test, patient=r.patient))),
        spacing="2",
    )


def _worklist_row(r: WorklistRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(_priority_badge(r.priority)),
        rx.table.row_header_cell(r.test, rx.text(r.specimen, size="1", color="var(--gray-11)")),
        rx.table.cell(r.patient, rx.text(r.mrn + " · " + r.birth_date + " · " + r.sex, size="1",
                                         color="var(--gray-11)")),
        rx.table.cell(r.ordered_by), rx.table.cell(r.waiting), rx.table.cell(r.status), rx.table.cell(r.note),
        rx.table.cell(_worklist_actions(r)),
        data_order=r.id.to_string(),
    )


LAB_UPLOAD_ID = "lab-report"


def _work_dialog() -> rx.Component:
    s = LabWorklistState
    w = s.working
    return dialog(
        w.test,
        rx.vstack(
            rx.cond(w.note != "", rx.text(t("Note from the doctor: {note}", note=w.note), size="2"), rx.fragment()),
            rx.cond(w.status_value == "in_progress", _entry_guide(w), rx.fragment()),
            rx.cond(
                w.status_value == "in_progress",
                rx.form(rx.vstack(
                    field(N_("Result"), "value", required=True, field_id="lab-value",
                          hint=N_("A number in the test's unit; the flag is computed, never typed.")),
                    field(N_("Comment"), "comment", field_id="lab-comment"),
                    rx.button(t("Save result"), type="submit"),
                    spacing="2", width="100%"), on_submit=s.enter_result, reset_on_submit=True),
                rx.text(rx.cond(w.status_value == "completed", t("The result is saved and the order is complete."),
                                t("Enter the result once the test is in progress.")), size="2",
                        color="var(--gray-11)"),
            ),
            rx.cond(s.last_flag != "", rx.callout(t("Flag: {flag}", flag=s.last_flag), icon="flag", width="100%"),
                    rx.fragment()),
            rx.cond(
                w.status_value != "requested",
                rx.hstack(
                    rx.el.label(rx.text.span(t("Report file"), class_name="visually-hidden"),
                                rx.upload(rx.button(t("Choose report file"), variant="soft", type="button"),
                                          id=LAB_UPLOAD_ID, max_files=1, multiple=False, padding="0.25rem",
                                          border="1px dashed var(--gray-7)")),
                    rx.text(rx.selected_files(LAB_UPLOAD_ID).join(", "), size="2"),
                    rx.button(t("Upload"), variant="soft",
                              on_click=s.upload_report(rx.upload_files(upload_id=LAB_UPLOAD_ID))),
                    align="center", wrap="wrap", spacing="2"),
                rx.fragment(),
            ),
            rx.cond(
                (w.status_value == "completed") | (w.status_value == "cancelled"),
                rx.fragment(),
                _cancel_steps(),
            ),
            rx.flex(close_button(N_("Close"), s.close_work), justify="end", width="100%"),
            spacing="3", margin_top="0.75rem",
        ),
        description=t("{patient} · {mrn} · {specimen} · priority {priority}", patient=w.patient, mrn=w.mrn,
                      specimen=w.specimen, priority=_priority_text(w.priority)),
        open=s.working_id != 0, on_close=s.close_work,
    )


def _entry_guide(w: WorklistRow) -> rx.Component:
    """What the result must be read against, shown before a value is typed."""
    def item(label: str, value: rx.Var, element_id: str) -> rx.Component:
        return rx.data_list.item(rx.data_list.label(t(label), min_width="9rem"),
                                 rx.data_list.value(rx.cond(value != "", value, t("none")), id=element_id))

    return rx.cond(
        w.numeric,
        rx.data_list.root(
            item(N_("Unit"), w.unit, "lab-guide-unit"),
            item(N_("This patient's range"), w.reference_range, "lab-guide-range"),
            item(N_("Critical limits"), w.critical_limits, "lab-guide-critical"),
            size="2", orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
        ),
        rx.text(t("A text result: no unit, range or critical limits."), size="2", color="var(--gray-11)"),
    )


def _cancel_steps() -> rx.Component:
    """Cancelling takes three steps: ask, give the reason, then confirm what will be cancelled."""
    s = LabWorklistState
    w = s.working
    return rx.cond(
        s.cancel_reason != "",
        rx.callout.root(
            rx.callout.text(rx.text.strong(t("Cancel {test} for {patient} ({mrn})?", test=w.test, patient=w.patient,
                                             mrn=w.mrn)),
                            rx.el.br(), t("Reason: {reason}", reason=s.cancel_reason),
                            rx.el.br(), t("The ordering doctor is told why. This cannot be undone.")),
            rx.hstack(
                rx.button(t("Yes, cancel this order"), color_scheme="red", high_contrast=True, on_click=s.cancel,
                          id="lab-cancel-confirm"),
                rx.button(t("Keep the order"), variant="soft", color_scheme="gray", on_click=s.keep_order),
                spacing="2", wrap="wrap"),
            color_scheme="red", role="alert", width="100%", id="lab-cancel-confirmation",
        ),
        rx.cond(
            s.cancelling,
            rx.form(rx.hstack(
                rx.box(field(N_("Reason for cancelling"), "reason", required=True, field_id="lab-cancel-reason"),
                       flex="1"),
                rx.button(t("Continue…"), type="submit", color_scheme="red", variant="soft"), align="end",
                width="100%"),
                on_submit=s.review_cancel),
            rx.button(t("Cancel this order…"), variant="soft", color_scheme="red", on_click=s.ask_cancel),
        ),
    )


def lab_worklist_page() -> rx.Component:
    s = LabWorklistState
    filters = rx.form(
        rx.grid(
            select_field(N_("Status"), "status", [("", N_("All open")), ("requested", N_("Requested")),
                                                  ("collected", N_("Collected")), ("in_progress", N_("In progress"))],
                         field_id="lab-filter-status"),
            select_field(N_("Priority"), "priority", [("", N_("Any")), ("stat", N_("Stat")), ("urgent", N_("Urgent")),
                                                      ("routine", N_("Routine"))], field_id="lab-filter-priority"),
            rx.vstack(
                rx.el.label(t("Test"), html_for="lab-filter-test", font_weight="500", font_size="0.9rem"),
                rx.el.select(rx.el.option(t("Any test"), value=""),
                             rx.foreach(s.tests, lambda test: rx.el.option(test.label, value=test.id.to_string())),
                             id="lab-filter-test", name="test", class_name="native-select", width="100%"),
                spacing="1", width="100%"),
            select_field(N_("Show"), "show", [("open", N_("Open orders")), ("completed", N_("Completed")),
                                              ("cancelled", N_("Cancelled"))], field_id="lab-filter-show"),
            field(N_("From (completed or cancelled)"), "from", type="date", field_id="lab-filter-from"),
            field(N_("To"), "to", type="date", field_id="lab-filter-to"),
            rx.button(t("Apply filters"), type="submit"),
            columns=rx.breakpoints(initial="1", sm="4"), spacing="3", align="end", width="100%"),
        on_submit=s.apply_filters, reset_on_submit=False, width="100%",
    )
    return page_shell(
        t("Lab worklist"),
        data_table(s, caption=rx.match(s.filter_show, ("completed", t("Completed orders, newest first")),
                                       ("cancelled", t("Cancelled orders, newest first")),
                                       t("Open lab orders: stat first, then urgent, then routine")),
                   columns=[("", N_("Priority")), ("", N_("Test")), ("", N_("Patient")), ("", N_("Ordered by")),
                            ("", N_("Waiting")), ("", N_("Status")), ("", N_("Note")), ("", N_("Actions"))],
                   rows=s.rows, render_row=_worklist_row, toolbar=filters,
                   empty=rx.cond(s.filter_show == "open",
                                 t("No open orders match. New orders from doctors appear here at once."),
                                 t("No orders match in these dates. Widen the dates or change the filters."))),
        _work_dialog(),
    )


# --- results (patient and doctor) ---------------------------------------------------------------


def _flag_badge(r: ResultView) -> rx.Component:
    return rx.cond(r.flag != "", rx.badge(r.flag_label, high_contrast=True, variant="soft", size="2",
                                          color_scheme=rx.match(r.flag, ("normal", "grass"), ("low", "amber"),
                                                                ("high", "amber"), "red"),
                                          class_name="result-flag", data_flag=r.flag), rx.fragment())


def _result_row(r: ResultView) -> rx.Component:
    s = LabResultsState
    return rx.table.row(
        rx.table.cell(r.resulted_at, white_space="nowrap"),
        rx.table.row_header_cell(r.test, rx.text(r.patient + " · " + r.mrn, size="1", color="var(--gray-11)")),
        rx.table.cell(rx.text(r.value + " " + r.unit, weight="bold"), rx.text(r.comment, size="1"),
                      rx.cond(r.status != "", rx.badge(r.status, variant="soft", color_scheme=rx.cond(r.held, "amber", "gray"),
                                                       high_contrast=True, class_name="result-status",
                                                       white_space="normal"), rx.fragment()),
                      rx.cond(r.review_note != "", rx.text(t("Note from your doctor: {note}", note=r.review_note),
                                                           size="1",
                                                           class_name="review-note"), rx.fragment())),
        rx.table.cell(r.reference_range),
        rx.table.cell(_flag_badge(r),
                      rx.cond(r.needs_acknowledgement,
                              rx.button(t("Acknowledge"), size="1", color_scheme="red",
                                        on_click=s.acknowledge(r.result_id),
                                        aria_label=t("Acknowledge the critical {test}", test=r.test)),
                              rx.fragment()),
                      rx.cond(r.can_review,
                              rx.button(t("Mark reviewed…"), size="1", on_click=s.open_review(r.result_id),
                                        aria_label=t("Mark reviewed: {test} for {patient}", test=r.test,
                                                     patient=r.patient)),
                              rx.fragment())),
        rx.table.cell(rx.cond(r.withheld, rx.fragment(), rx.hstack(
            rx.button(t("PDF report"), size="1", variant="soft", on_click=s.download(r.order_id, "pdf"),
                      aria_label=t("PDF report of {test}", test=r.test)),
            rx.cond(r.has_report_file,
                    rx.button(t("Lab file"), size="1", variant="soft", on_click=s.download(r.order_id, "report"),
                              aria_label=t("Lab file for {test}", test=r.test)),
                    rx.fragment()),
            spacing="2"))),
        data_result=r.order_id.to_string(),
        background=rx.cond(r.needs_acknowledgement, "var(--red-2)", "transparent"),
    )


def _review_dialog() -> rx.Component:
    s = LabResultsState
    return dialog(
        N_("Mark reviewed"),
        rx.form(rx.vstack(
            rx.vstack(
                rx.el.label(t("Note to the patient (optional)"), html_for="review-note", font_weight="500",
                            font_size="0.9rem"),
                rx.text_area(id="review-note", name="note", rows="4", width="100%",
                             aria_describedby="review-note-hint"),
                rx.text(t("The patient sees it with the result. At most {count} characters.", count=MAX_REVIEW_NOTE),
                        id="review-note-hint", size="1", color="var(--gray-11)"),
                spacing="1", width="100%"),
            rx.flex(close_button(N_("Cancel"), s.close_review),
                    rx.button(t("Mark reviewed and release"), type="submit", id="review-submit"),
                    justify="end", spacing="2", width="100%"),
            spacing="3", width="100%"), on_submit=s.review, reset_on_submit=False),
        description=t("{result} · the patient sees the result once you mark it reviewed.", result=s.reviewing_title),
        open=s.reviewing_id != 0, on_close=s.close_review,
    )


def results_page() -> rx.Component:
    return page_shell(
        t("Lab results"),
        _review_dialog(),
        data_table(LabResultsState, caption=N_("Lab results: critical ones not yet acknowledged first, then those "
                                               "awaiting review"),
                   columns=[("", N_("Resulted")), ("", N_("Test")), ("", N_("Value")), ("", N_("Range")),
                            ("", N_("Flag")), ("", N_("Files"))],
                   rows=LabResultsState.rows, render_row=_result_row,
                   empty=N_("No results yet. Completed tests appear here as soon as the lab enters them.")),
    )
