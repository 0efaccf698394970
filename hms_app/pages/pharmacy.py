"""The pharmacy's dashboard, prescription queue, stock and stock ledger; the patient's prescriptions."""

from __future__ import annotations

import reflex as rx

from hms_app.components.dialogs import close_button, confirm_dialog, dialog, form_buttons
from hms_app.components.forms import field, filter_select, request_key_field, select_field
from hms_app.components.i18n import t, tn
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table, pager, search_box
from hms_app.services.core.language import N_
from hms_app.services.medicines.inventory import ADJUSTMENT_REASONS, BatchRow, MovementRow, StockRow
from hms_app.services.medicines.pharmacy import DispenseLine, PatientPrescription, QueueRow
from hms_app.state.pharmacy import (
    QUANTITY_PREFIX,
    InventoryState,
    PatientPrescriptionsState,
    PharmacyDashboardState,
    PharmacyQueueState,
    StockLedgerState,
)

_MUTED = "var(--gray-11)"


def _status_badge(status: rx.Var, label: rx.Var) -> rx.Component:
    return rx.badge(label, high_contrast=True, variant="soft", class_name="prescription-status", data_status=status,
                    color_scheme=rx.match(status, ("issued", "blue"), ("verified", "cyan"),
                                          ("partly_dispensed", "amber"), ("dispensed", "grass"), ("rejected", "red"),
                                          "gray"))


# --- the prescription queue ----------------------------------------------------------------------


def _queue_actions(r: QueueRow) -> rx.Component:
    s = PharmacyQueueState
    return rx.hstack(
        rx.cond(r.status_value == "issued",
                rx.button(t("Verify"), size="1", on_click=s.verify(r.id),
                          aria_label=t("Verify prescription for {patient}", patient=r.patient)), rx.fragment()),
        rx.cond((r.status_value == "verified") | (r.status_value == "partly_dispensed"),
                rx.button(t("Dispense"), size="1", on_click=s.open_dispense(r.id),
                          aria_label=t("Dispense prescription for {patient}", patient=r.patient)),
                rx.fragment()),
        rx.cond((r.status_value == "issued") | (r.status_value == "verified"),
                rx.button(t("Reject"), size="1", variant="soft", color_scheme="red", on_click=s.ask_reject(r.id),
                          aria_label=t("Reject prescription for {patient}", patient=r.patient)),
                rx.fragment()),
        spacing="2", wrap="wrap",
    )


def _queue_row(r: QueueRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r.issued, white_space="nowrap"),
        rx.table.row_header_cell(r.patient, rx.text(r.mrn, size="1", color=_MUTED)),
        rx.table.cell(r.prescriber),
        rx.table.cell(
            rx.text(r.items_text, white_space="pre-line", size="2"),
            rx.cond(r.overrides_text != "",
                    rx.box(rx.text(t("Safety warnings overridden by the prescriber"), weight="bold", size="1"),
                           rx.text(r.overrides_text, white_space="pre-line", size="1"),
                           class_name="override-note", margin_top="0.25rem"),
                    rx.fragment()),
        ),
        rx.table.cell(_status_badge(r.status_value, r.status),
                      rx.cond(r.status_reason != "", rx.text(r.status_reason, size="1"), rx.fragment())),
        rx.table.cell(_queue_actions(r)),
        data_prescription=r.id.to_string(),
    )


def _reject_dialog() -> rx.Component:
    s = PharmacyQueueState
    return dialog(
        N_("Reject prescription"),
        rx.form(rx.vstack(
            field(N_("Reason"), "reason", required=True, field_id="reject-reason",
                  hint=N_("For example: dose exceeds the maximum daily dose; please review.")),
            rx.hstack(
                close_button(N_("Cancel"), s.close_reject, type="button"),
                confirm_dialog(
                    t("Reject the prescription for {patient}?", patient=s.rejecting_patient),
                    N_("It will not be dispensed; the prescriber and the patient are told the reason. "
                       "This cannot be undone."),
                    confirm=N_("Reject prescription"), form="reject-form",
                    trigger=rx.button(t("Reject prescription"), type="button", color_scheme="red",
                                      high_contrast=True)),
                justify="end", width="100%"),
            spacing="3", margin_top="0.75rem"), on_submit=s.reject, reset_on_submit=False, id="reject-form"),
        description=N_("The prescriber and the patient are told the reason."),
        open=s.rejecting_id != 0, on_close=s.close_reject, max_width="32rem",
    )


def _dispense_line(line: DispenseLine) -> rx.Component:
    input_id = "dispense-qty-" + line.item_id.to_string()
    return rx.table.row(
        rx.table.row_header_cell(line.medicine, rx.text(line.directions, size="1", color=_MUTED)),
        rx.table.cell(t("{dispensed} of {quantity}", dispensed=line.dispensed, quantity=line.quantity)),
        rx.table.cell(line.in_stock.to_string(), rx.text(line.next_lot, size="1", color=_MUTED)),
        rx.table.cell(
            rx.el.label(t("Units to dispense now of {medicine}", medicine=line.medicine), html_for=input_id, class_name="visually-hidden"),
            rx.input(id=input_id, name=QUANTITY_PREFIX + line.item_id.to_string(), type="number", min=0,
                     max=line.remaining, default_value=line.remaining.to_string(), width="6rem",
                     disabled=line.remaining == 0,
                     key=PharmacyQueueState.dispensing.id.to_string() + "-" + line.item_id.to_string() + "-"
                     + line.dispensed.to_string()),
        ),
        data_item=line.item_id.to_string(),
    )


def _dispense_dialog() -> rx.Component:
    s = PharmacyQueueState
    v = s.dispensing
    return dialog(
        N_("Dispense prescription"),
        rx.form(rx.vstack(
            rx.text(t("Units come from the first-expiring usable lot; expired lots are never used. Dispense less "
                      "than owed to hand out part now and the rest later."), size="2", color=_MUTED),
            rx.box(rx.table.root(
                rx.table.header(rx.table.row(
                    rx.table.column_header_cell(t("Medicine"), scope="col"),
                    rx.table.column_header_cell(t("Dispensed"), scope="col"),
                    rx.table.column_header_cell(t("Usable stock"), scope="col"),
                    rx.table.column_header_cell(t("Now"), scope="col"))),
                rx.table.body(rx.foreach(v.lines, _dispense_line)),
                variant="surface", width="100%"), overflow_x="auto", width="100%"),
            request_key_field(s.form_key),
            form_buttons(N_("Dispense"), s.close_dispense),
            spacing="3", margin_top="0.75rem"), on_submit=s.dispense, reset_on_submit=False),
        description=t("{patient} · {mrn} · prescribed by {prescriber} · {status}", patient=v.patient, mrn=v.mrn,
                      prescriber=v.prescriber, status=v.status),
        open=v.id != 0, on_close=s.close_dispense, max_width="44rem",
    )


QUEUE_SHOW = [("", N_("Open (to verify or dispense)")), ("issued", N_("To verify")), ("verified", N_("To dispense")),
              ("done", N_("Dispensed or rejected"))]


def pharmacy_queue_page() -> rx.Component:
    s = PharmacyQueueState
    toolbar = rx.hstack(search_box(s, N_("Search prescriptions"), N_("Patient name or MRN")),
                        filter_select(N_("Show"), "queue-show", QUEUE_SHOW, s.filter_queue),
                        align="end", wrap="wrap", spacing="3")
    return page_shell(
        t("Prescription queue"),
        data_table(s, caption=N_("Prescriptions, oldest first"),
                   columns=[("", N_("Issued")), ("", N_("Patient")), ("", N_("Prescriber")), ("", N_("Items")),
                            ("", N_("Status")), ("", N_("Actions"))],
                   rows=s.rows, render_row=_queue_row, toolbar=toolbar,
                   empty=N_("No prescriptions here. New ones from doctors appear at once; choose another view "
                            "under Show to see finished ones.")),
        _reject_dialog(),
        _dispense_dialog(),
    )


# --- stock ---------------------------------------------------------------------------------------


def _stock_badge(r: StockRow) -> rx.Component:
    """The stock's state in words, coloured from the figures (the words are in the reader's language):
    green in stock, amber at or below the reorder level, red out of stock or off the formulary."""
    return rx.badge(r.state_label, high_contrast=True, variant="soft",
                    color_scheme=rx.cond(r.is_active & (r.on_hand > 0), rx.cond(r.low, "amber", "grass"), "red"))


def _stock_row(r: StockRow) -> rx.Component:
    s = InventoryState
    label = r.name + " " + r.strength
    return rx.table.row(
        rx.table.row_header_cell(r.name, rx.text(r.strength + " · " + r.form, size="1", color=_MUTED)),
        rx.table.cell(r.on_hand.to_string(), class_name="on-hand"),
        rx.table.cell(r.reorder_level.to_string()),
        rx.table.cell(r.next_expiry),
        rx.table.cell(r.unit_price),
        rx.table.cell(_stock_badge(r),
                      rx.cond(r.expired_on_hand > 0, rx.text(tn("{n} expired", "{n} expired", r.expired_on_hand), size="1"),
                              rx.fragment())),
        rx.table.cell(rx.cond(
            r.is_active,
            rx.hstack(
                rx.button(t("Receive"), size="1", on_click=s.open_receive(r.id),
                          aria_label=t("Receive stock of {medicine}", medicine=label)),
                rx.button(t("Batches"), size="1", variant="soft", on_click=s.open_batches(r.id),
                          aria_label=t("Batches of {medicine}", medicine=label)),
                rx.button(t("Edit"), size="1", variant="soft", color_scheme="gray", on_click=s.open_edit(r.id),
                          aria_label=t("Edit {medicine}", medicine=label)),
                rx.button(t("Take off"), size="1", variant="soft", color_scheme="gray",
                          on_click=s.toggle_medicine(r.id, False),
                          aria_label=t("Take off the formulary: {medicine}", medicine=label)),
                spacing="2", wrap="wrap"),
            rx.button(t("Reactivate"), size="1", variant="soft", on_click=s.toggle_medicine(r.id, True),
                      aria_label=t("Reactivate {medicine}", medicine=label)))),
        data_medicine=r.id.to_string(),
    )


def _receive_dialog() -> rx.Component:
    s = InventoryState
    return dialog(
        N_("Receive stock"),
        rx.form(rx.vstack(
            rx.vstack(
                rx.el.label(t("Medicine"), html_for="receive-medicine", font_weight="500", font_size="0.9rem"),
                rx.el.select(rx.foreach(s.medicines, lambda m: rx.el.option(m.label, value=m.id.to_string())),
                             id="receive-medicine", name="medicine_id", class_name="native-select",
                             default_value=s.receive_for.to_string(), required=True),
                spacing="1", width="100%"),
            field(N_("Supplier"), "supplier", required=True, field_id="receive-supplier"),
            rx.grid(
                field(N_("Lot number"), "lot", required=True, field_id="receive-lot"),
                field(N_("Expiry date"), "expiry", type="date", required=True, field_id="receive-expiry"),
                field(N_("Quantity (units)"), "quantity", type="number", required=True, field_id="receive-quantity",
                      min=1, max=100000),
                field(N_("Unit cost"), "unit_cost", required=True, field_id="receive-cost", input_mode="decimal",
                      hint=N_("Per unit, like 0.12.")),
                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
            form_buttons(N_("Receive"), s.close_receive),
            spacing="3", margin_top="0.75rem"), on_submit=s.receive, reset_on_submit=False),
        description=N_("Book a delivery into stock; it is recorded in the stock ledger."),
        open=s.receiving, on_close=s.close_receive, max_width="36rem",
    )


def _batch_row(b: BatchRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(b.lot),
        rx.table.cell(b.expiry),
        rx.table.cell(b.on_hand.to_string(), class_name="batch-on-hand"),
        rx.table.cell(b.unit_cost),
        rx.table.cell(rx.badge(b.state_label, high_contrast=True, variant="soft",
                               color_scheme=rx.match(b.state, ("Usable", "grass"), ("Expiring", "amber"), "red"))),
        data_lot=b.lot,
    )


def _batches_dialog() -> rx.Component:
    s = InventoryState
    m = s.batches_of
    return dialog(
        t("Batches of {medicine}", medicine=m.name + " " + m.strength),
        rx.cond(
            s.batches.length() > 0,
            rx.box(rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                               (t("Lot"), t("Expiry"), t("On hand"), t("Unit cost"), t("State"))])),
                rx.table.body(rx.foreach(s.batches, _batch_row)), variant="surface", width="100%"),
                overflow_x="auto", width="100%", margin_top="0.75rem"),
            rx.callout(t("No stock of this medicine. Use Receive to book a delivery in."), icon="info",
                       color_scheme="gray", margin_top="0.75rem"),
        ),
        rx.cond(
            s.batches.length() > 0,
            rx.form(rx.vstack(
                rx.heading(t("Adjust a batch"), as_="h3", size="3"),
                rx.grid(
                    rx.vstack(
                        rx.el.label(t("Lot"), html_for="adjust-batch", font_weight="500", font_size="0.9rem"),
                        rx.el.select(rx.foreach(s.batches, lambda b: rx.el.option(
                            t("{lot} ({count} on hand)", lot=b.lot, count=b.on_hand), value=b.id.to_string())),
                            id="adjust-batch", name="batch_id", class_name="native-select", width="100%"),
                        spacing="1", width="100%"),
                    select_field(N_("Reason"), "reason", ADJUSTMENT_REASONS, field_id="adjust-reason"),
                    field(N_("Change in units"), "change", required=True, field_id="adjust-change",
                          hint=N_("Negative to take out, like -3.")),
                    field(N_("Note"), "note", field_id="adjust-note", hint=N_("Required for a count correction.")),
                    columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
                rx.button(t("Record adjustment"), type="submit"),
                spacing="3", margin_top="1rem", align="start"), on_submit=s.adjust, reset_on_submit=True),
            rx.fragment(),
        ),
        description=N_("Lots holding stock, first to expire first. Expired lots are never dispensed; write them off "
                       "with the reason Expired."),
        buttons=[close_button(N_("Close"), s.close_batches)],
        open=m.id != 0, on_close=s.close_batches, max_width="44rem",
    )


def _medicine_fields(prefix: str, m: StockRow | None = None) -> rx.Component:
    """The formulary fields of a medicine, empty to add one or filled with ``m`` to edit it."""
    def value(name: str):
        return {} if m is None else {"default_value": getattr(m, name)}

    return rx.vstack(
        rx.grid(
            field(N_("Name"), "name", required=True, field_id=f"{prefix}-name", **value("name")),
            field(N_("Strength"), "strength", required=True, field_id=f"{prefix}-strength", placeholder=N_("500 mg"),
                  **value("strength")),
            field(N_("Form"), "form", required=True, field_id=f"{prefix}-form", placeholder=N_("tablet"),
                  **value("form")),
            field(N_("Unit price"), "unit_price", required=True, field_id=f"{prefix}-price", input_mode="decimal",
                  hint=N_("What the patient is charged per unit, from now on."), **value("price_input")),
            field(N_("Reorder level (units)"), "reorder_level", type="number", required=True,
                  field_id=f"{prefix}-reorder", min=0,
                  **({} if m is None else {"default_value": m.reorder_level.to_string()})),
            field(N_("Drug class"), "drug_class", field_id=f"{prefix}-class", placeholder=N_("penicillins"),
                  **value("drug_class")),
            columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
        field(N_("Active ingredients"), "ingredients", required=True, field_id=f"{prefix}-ingredients",
              hint=N_("Comma-separated; the allergy check at prescribing matches on them."), **value("ingredients")),
        spacing="3", width="100%",
    )


def _edit_dialog() -> rx.Component:
    s = InventoryState
    m = s.editing
    return dialog(
        t("Edit {medicine}", medicine=m.name + " " + m.strength),
        rx.form(rx.vstack(
            _medicine_fields("edit", m),
            form_buttons(N_("Save"), s.close_edit),
            spacing="3", margin_top="0.75rem"), on_submit=s.save_medicine, reset_on_submit=False),
        description=N_("Prescriptions and dispensing already recorded keep what they recorded."),
        open=m.id != 0, on_close=s.close_edit, max_width="36rem",
    )


def _add_dialog() -> rx.Component:
    s = InventoryState
    return dialog(
        N_("Add a medicine to the formulary"),
        rx.form(rx.vstack(
            _medicine_fields("add"),
            form_buttons(N_("Add medicine"), s.close_add),
            spacing="3", margin_top="0.75rem"), on_submit=s.add_medicine, reset_on_submit=False),
        open=s.adding, on_close=s.close_add, max_width="36rem",
    )


STOCK_SHOW = [("", N_("All medicines")), ("low", N_("At or below reorder level")),
              ("expiring", N_("Expiring within 90 days")), ("expired", N_("Holding expired stock")),
              ("inactive", N_("Taken off the formulary"))]


def inventory_page() -> rx.Component:
    s = InventoryState
    toolbar = rx.hstack(search_box(s, N_("Search medicines"), N_("Medicine name")),
                        filter_select(N_("Show"), "stock-show", STOCK_SHOW, s.filter_stock),
                        align="end", wrap="wrap", spacing="3")
    return page_shell(
        t("Stock"),
        data_table(s, caption=N_("Medicines and their usable stock"),
                   columns=[("name", N_("Medicine")), ("on_hand", N_("On hand")), ("reorder_level", N_("Reorder level")),
                            ("next_expiry", N_("Next expiry")), ("unit_price", N_("Unit price")), ("", N_("State")),
                            ("", N_("Actions"))],
                   rows=s.rows, render_row=_stock_row, toolbar=toolbar,
                   empty=N_("No medicines match. Clear the search, or choose All medicines under Show.")),
        _receive_dialog(), _batches_dialog(), _edit_dialog(), _add_dialog(),
        actions=rx.hstack(
            rx.button(rx.icon("package-plus", size=16, aria_hidden="true"), t("Receive stock"),
                      on_click=s.open_receive(0)),
            rx.button(rx.icon("plus", size=16, aria_hidden="true"), t("Add medicine"), variant="soft",
                      on_click=s.open_add),
            spacing="2", wrap="wrap"),
    )


def _movement_row(m: MovementRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(m.when, white_space="nowrap"),
        rx.table.row_header_cell(m.medicine, rx.text(t("lot {lot}", lot=m.lot), size="1", color=_MUTED)),
        rx.table.cell(m.kind),
        rx.table.cell(rx.text(m.change, weight="bold", color=rx.cond(m.quantity > 0, "var(--grass-11)",
                                                                     "var(--red-11)"))),
        rx.table.cell(m.note),
        rx.table.cell(m.by),
    )


def stock_ledger_page() -> rx.Component:
    s = StockLedgerState
    return page_shell(
        t("Stock ledger"),
        data_table(s, caption=N_("Every change to stock, newest first"),
                   columns=[("when", N_("When")), ("medicine", N_("Medicine")), ("kind", N_("Kind")),
                            ("quantity", N_("Change")), ("", N_("Note")), ("", N_("By"))],
                   rows=s.rows, render_row=_movement_row,
                   toolbar=search_box(s, N_("Search the ledger"), N_("Medicine or lot")),
                   empty=N_("No stock movements match. Receiving, dispensing and adjusting stock all appear here.")),
    )


# --- the dashboard -------------------------------------------------------------------------------


def _tile(label: str, value: rx.Var, element_id: str, href: str) -> rx.Component:
    return rx.link(rx.card(rx.vstack(
        rx.text(t(label), size="2", color=_MUTED),
        rx.text(value, size="6", weight="bold", id=element_id),
        spacing="1"), width="100%"), href=href, underline="none", min_width="11rem", flex="1")


def _alert_list(title: str, rows: rx.Var, render, empty: str) -> rx.Component:
    return rx.card(
        rx.heading(t(title), as_="h2", size="4", margin_bottom="0.5rem"),
        rx.cond(rows.length() > 0, rx.el.ul(rx.foreach(rows, render), class_name="plain-list"),
                rx.text(t(empty), size="2", color=_MUTED)),
        flex="1", min_width="16rem",
    )


def pharmacy_dashboard() -> rx.Component:
    a = PharmacyDashboardState.alerts
    c = PharmacyDashboardState.counts
    return page_shell(
        t("Pharmacy dashboard"),
        rx.flex(
            _tile(N_("To verify"), c.to_verify.to_string(), "tile-to-verify", "/pharmacy/queue"),
            _tile(N_("To dispense"), c.to_dispense.to_string(), "tile-to-dispense", "/pharmacy/queue"),
            _tile(N_("At or below reorder level"), a.low_count.to_string(), "tile-low", "/pharmacy/stock"),
            _tile(N_("Expiring within 90 days"), a.expiring_count.to_string(), "tile-expiring", "/pharmacy/stock"),
            _tile(N_("Expired lots"), a.expired_count.to_string(), "tile-expired", "/pharmacy/stock"),
            _tile(N_("Stock value at cost"), a.stock_value, "tile-stock-value", "/pharmacy/stock"),
            spacing="3", wrap="wrap", width="100%",
        ),
        rx.flex(
            # The English reads as it always has ("1 units"); the catalogues give each language its plurals.
            _alert_list(N_("Low stock"), a.low, lambda r: rx.el.li(
                rx.text(r.name + " " + r.strength, weight="medium"),
                rx.text(t("{on_hand} on hand · reorder at {level}", on_hand=r.on_hand, level=r.reorder_level),
                        size="1", color=_MUTED)), N_("Every medicine is above its reorder level.")),
            _alert_list(N_("Expiring within 90 days"), a.expiring, lambda b: rx.el.li(
                rx.text(b.medicine, weight="medium"),
                rx.text(tn("lot {lot} · {n} units · expires {date}", "lot {lot} · {n} units · expires {date}",
                           b.on_hand, lot=b.lot, date=b.expiry), size="1", color=_MUTED)),
                N_("No lot expires in the next 90 days.")),
            _alert_list(N_("Expired, blocked from dispensing"), a.expired, lambda b: rx.el.li(
                rx.text(b.medicine, weight="medium"),
                rx.text(tn("lot {lot} · {n} units · expired {date}", "lot {lot} · {n} units · expired {date}",
                           b.on_hand, lot=b.lot, date=b.expiry), size="1", color=_MUTED)),
                N_("No expired stock on the shelves.")),
            spacing="3", wrap="wrap", width="100%",
        ),
    )


# --- the patient's prescriptions -----------------------------------------------------------------


def _patient_card(p: PatientPrescription) -> rx.Component:
    return rx.el.li(rx.card(
        rx.flex(
            rx.heading(t("Prescribed {date}", date=p.issued), as_="h2", size="3"),
            _status_badge(p.status_value, p.status),
            justify="between", align="center", wrap="wrap", spacing="2"),
        rx.text(t("By {prescriber}", prescriber=p.prescriber), size="2", color=_MUTED),
        rx.text(p.items_text, white_space="pre-line", size="2", margin_top="0.5rem"),
        rx.cond(p.status_reason != "", rx.text(t("Pharmacy: {reason}", reason=p.status_reason), size="2", margin_top="0.25rem"),
                rx.fragment()),
        rx.cond(p.charge_cents > 0, rx.text(t("Dispensed value {amount}", amount=p.charge), size="2", margin_top="0.25rem"),
                rx.fragment()),
        width="100%"), data_prescription=p.id.to_string())


def patient_prescriptions_page() -> rx.Component:
    """Cards rather than a table: they read well on a phone, where most patients look."""
    s = PatientPrescriptionsState
    return page_shell(
        t("My prescriptions"),
        rx.cond(
            s.rows.length() > 0,
            rx.el.ul(rx.foreach(s.rows, _patient_card), class_name="plain-list", width="100%",
                     aria_label=t("My prescriptions, newest first")),
            rx.callout(t("No prescriptions yet. Medicines your doctor prescribes appear here, with their status as "
                         "the pharmacy works on them."), icon="info", color_scheme="gray", width="100%"),
        ),
        pager(s),
    )
