"""/admin/import: bring a hospital's data in from CSV and FHIR files."""

from __future__ import annotations

import reflex as rx

from hms_app.components.i18n import t, tn
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table, search_box
from hms_app.services.core.language import N_
from hms_app.services.golive.jobs import ImportView, ReportLine
from hms_app.state.imports import ImportHistoryState as H
from hms_app.state.imports import ImportState as S

UPLOAD_ID = "import-file"
STEPS = (
    N_("Choose what the file holds. Download its template if you need one: a header row and one example line."),
    N_("Upload the file: a UTF-8 CSV, or for FHIR a Bundle (.json) or NDJSON file (.ndjson). Map any column whose "
       "name HMS does not know."),
    N_("Check it: every problem is listed with its line number, and nothing is imported."),
    N_("Import it: all lines or none, or only the good lines. Importing the same file again updates the records "
       "instead of adding them twice."),
)
LOGIN_NOTE = N_("Imported staff and patients cannot log in until an administrator gives them a temporary password "
                "with Reset password on the users page.")
OUTCOMES = (("all", N_("Every line")), ("failed", N_("With problems")), ("created", N_("Created")),
            ("updated", N_("Updated")), ("unchanged", N_("Unchanged")), ("skipped", N_("Skipped")))
"""The report's outcome filter: (value, label)."""
HISTORY_COLUMNS = (N_("Started"), N_("File"), N_("Mode and status"), N_("Created"), N_("Updated"), N_("Unchanged"),
                   N_("Problems"), N_("By"), "")


def _field_label(text: rx.Var, html_for: str = "") -> rx.Component:
    return rx.el.label(text, html_for=html_for or None, font_weight="500", font_size="0.9rem")


def _chooser() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(t("Choose a file"), as_="h2", size="4"),
            rx.el.ol(*[rx.el.li(t(step)) for step in STEPS], list_style_type="decimal", padding_left="1.5rem",
                     font_size="0.9rem", line_height="1.5"),
            rx.hstack(
                rx.vstack(
                    _field_label(t("What the file holds"), "import-kind"),
                    rx.el.select(rx.foreach(S.kinds, lambda k: rx.el.option(k[1], value=k[0])), id="import-kind",
                                 value=S.kind, on_change=S.choose_kind, class_name="native-select"),
                    spacing="1",
                ),
                rx.button(t("Download template"), variant="soft", type="button", on_click=S.download_template),
                align="end", wrap="wrap", spacing="3",
            ),
            rx.hstack(
                rx.el.label(
                    rx.text(t("File to import"), weight="medium", size="2", as_="span", display="block",
                            margin_bottom="0.25rem"),
                    rx.upload(rx.hstack(
                        rx.button(t("Choose file"), variant="soft", type="button"),
                        rx.text(rx.cond(rx.selected_files(UPLOAD_ID).length() > 0,
                                        rx.selected_files(UPLOAD_ID).join(", "), t("No file chosen")),
                                size="2", color="var(--gray-11)"),
                        align="center", spacing="2"),
                        id=UPLOAD_ID, max_files=1, multiple=False, padding="0.25rem",
                        border="1px dashed var(--gray-8)", border_radius="var(--radius-2)"),
                ),
                rx.button(t("Upload and preview"), on_click=S.upload_file(rx.upload_files(upload_id=UPLOAD_ID))),
                align="end", wrap="wrap", spacing="3",
            ),
            rx.text(t(LOGIN_NOTE), size="2", color="var(--gray-11)"),
            spacing="3", width="100%",
        ),
        width="100%",
    )


def _mapping_row(pair: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(pair[0], scope="row"),
        rx.table.cell(rx.el.select(
            rx.foreach(S.column_options, lambda o: rx.el.option(o[1], value=o[0])),
            value=pair[1], aria_label=t("Column for {column}", column=pair[0].to(str)), class_name="native-select",
            on_change=lambda column: S.map_column(pair[0], column))),
        align="center",
    )


def _preview() -> rx.Component:
    return rx.cond(
        S.headers.length() > 0,
        rx.card(
            rx.vstack(
                rx.heading(t("Preview of {file}", file=S.file_name), as_="h2", size="4"),
                rx.text(tn("{n} data line. Map each column of the file to one of HMS's, or ignore it.",
                           "{n} data lines. Map each column of the file to one of HMS's, or ignore it.",
                           S.preview_lines), size="2"),
                rx.cond(S.problem != "", rx.callout(S.problem, icon="triangle-alert", color_scheme="red",
                                                    role="alert")),
                rx.table.root(
                    rx.el.caption(t("Column mapping"), class_name="visually-hidden"),
                    rx.table.header(rx.table.row(rx.table.column_header_cell(t("File column"), scope="col"),
                                                 rx.table.column_header_cell(t("Imported as"), scope="col"))),
                    rx.table.body(rx.foreach(S.mapping_rows, _mapping_row)),
                    variant="surface", width="100%",
                ),
                rx.text(t("First lines of the file, as they will be read:"), size="2", weight="medium"),
                rx.table.root(
                    rx.el.caption(t("First lines of the file"), class_name="visually-hidden"),
                    rx.table.header(rx.table.row(rx.foreach(S.headers, lambda h: rx.table.column_header_cell(
                        rx.el.span(h), scope="col")))),
                    rx.table.body(rx.foreach(S.preview_rows, lambda row: rx.table.row(
                        rx.foreach(row, lambda cell: rx.table.cell(cell))))),
                    variant="surface", width="100%",
                ),
                _actions(),
                spacing="3", width="100%",
            ),
            width="100%",
        ),
        rx.cond(S.file_name != "", _actions(), rx.fragment()),
    )


def _actions() -> rx.Component:
    return rx.hstack(
        rx.button(t("Check (dry run)"), variant="soft", on_click=S.check_file, disabled=S.problem != ""),
        rx.vstack(
            rx.el.label(t("When a line has a problem"), html_for="import-mode", font_weight="500",
                        font_size="0.9rem"),
            rx.el.select(rx.el.option(t("Import only if every line is good"), value="all"),
                         rx.el.option(t("Import the good lines, skip the others"), value="good"),
                         id="import-mode", value=S.mode, on_change=S.choose_mode, class_name="native-select"),
            spacing="1",
        ),
        rx.button(t("Import"), on_click=S.import_file, disabled=S.problem != ""),
        align="end", wrap="wrap", spacing="3",
    )


def _progress() -> rx.Component:
    job = S.job
    return rx.cond(
        job.id > 0,
        rx.card(
            rx.vstack(
                rx.heading(t("Import {id}: {kind} from {file}", id=job.id, kind=job.kind_label, file=job.file_name),
                           as_="h2", size="4"),
                rx.text(job.mode, " · ", job.status_label, size="2"),
                rx.progress(value=job.percent, max=100, aria_label=t("Import progress"), width="100%"),
                rx.text(t("{progress}: {created} created, {updated} updated, {unchanged} unchanged, {failed} with "
                          "problems", progress=job.progress_text, created=job.created, updated=job.updated,
                          unchanged=job.unchanged, failed=job.failed), size="2", role="status"),
                rx.cond(job.message != "", rx.text(job.message, size="2", weight="medium")),
                rx.cond(job.running, rx.hstack(
                    rx.button(t("Cancel import"), color_scheme="red", variant="soft", on_click=S.cancel),
                    rx.moment(interval=700, on_change=S.follow, display="none"),
                )),
                spacing="2", width="100%",
            ),
            width="100%", id="import-job",
        ),
    )


def _row(head: rx.Var, *cells: rx.Var | rx.Component) -> rx.Component:
    """A table row: its first column names the row, the others are plain cells."""
    return rx.table.row(rx.table.row_header_cell(head, scope="row"), *[rx.table.cell(cell) for cell in cells])


def _line_row(r: ReportLine) -> rx.Component:
    return _row(r.line, r.outcome_label, r.record, r.message)


def _report() -> rx.Component:
    return rx.cond(
        S.job.id > 0,
        data_table(
            S, caption=N_("What happened to each line"), rows=S.rows, render_row=_line_row,
            columns=[("", N_("Line")), ("", N_("Outcome")), ("", N_("Record")), ("", N_("Problem"))],
            empty=N_("No lines to show yet: the report fills in when the check or the import ends."),
            toolbar=rx.hstack(
                search_box(S, N_("Search the report"), N_("Line, record or word")),
                rx.vstack(
                    rx.el.label(t("Outcome"), html_for="import-outcome", font_weight="500", font_size="0.9rem"),
                    rx.el.select(*[rx.el.option(t(label), value=value) for value, label in OUTCOMES],
                        id="import-outcome", value=rx.cond(S.outcome_filter == "", "all", S.outcome_filter),
                        on_change=S.filter_outcome, class_name="native-select"),
                    spacing="1",
                ),
                align="end", wrap="wrap", spacing="3",
            ),
        ),
    )


def _history_row(j: ImportView) -> rx.Component:
    what = rx.fragment(rx.text(j.file_name, as_="div"), rx.text(j.kind_label, as_="div", size="1",
                                                                 color="var(--gray-11)"))
    return _row(rx.text(j.started, white_space="nowrap", as_="span"), what, rx.fragment(j.mode, " · ", j.status_label),
                j.created, j.updated, j.unchanged, j.failed, j.by,
                rx.button(t("Show report"), size="1", variant="soft", on_click=S.show_job(j.id), white_space="nowrap",
                          aria_label=t("Show report of import {id}", id=j.id)))


def _history() -> rx.Component:
    return rx.vstack(
        rx.heading(t("Past imports"), as_="h2", size="4"),
        data_table(
            H, caption=N_("Past imports"), rows=H.rows, render_row=_history_row,
            columns=[("", label) for label in HISTORY_COLUMNS],
            empty=rx.cond(H.search != "", t("No past import matches: search for another file name or kind."),
                          t("No imports yet. Choose what the file holds above, upload it and check it.")),
            toolbar=search_box(H, N_("Search past imports"), N_("File name or kind")),
        ),
        width="100%", spacing="2",
    )


def import_page() -> rx.Component:
    return page_shell(t("Import data"), _chooser(), _preview(), _progress(), _report(), _history())
