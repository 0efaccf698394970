"""Invoices: the accounts' list and invoice dialog, and the patient's own invoices with payment."""

from __future__ import annotations

import reflex as rx

from hms_app.components.dialogs import close_button, confirm_dialog, dialog, form_buttons
from hms_app.components.forms import (
    field,
    filter_select,
    request_key_field,
    select_field,
    submit_button,
)
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table, pager, search_box
from hms_app.services.accounting.billing import (
    CLAIM_ACTIONS,
    PAYMENT_METHODS,
    InvoiceRow,
    LineView,
    PaymentView,
)
from hms_app.state.billing import AccountsInvoicesState, PatientInvoicesState

_MUTED = "var(--gray-11)"


def _status_badge(r: InvoiceRow) -> rx.Component:
    return rx.badge(r.status, high_contrast=True, variant="soft", class_name="invoice-status", data_status=r.status_value,
                    color_scheme=rx.match(r.status_value, ("draft", "gray"), ("issued", "blue"),
                                          ("partly_paid", "amber"), ("paid", "grass"), "red"))


def _line_row(line: LineView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(line.service_date, white_space="nowrap"),
        rx.table.row_header_cell(line.description, rx.text(line.kind, size="1", color=_MUTED)),
        rx.table.cell(line.quantity.to_string(), text_align="right"),
        rx.table.cell(line.unit_price, text_align="right"),
        rx.table.cell(line.amount, text_align="right"),
    )


def _payment_row(p: PaymentView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(p.received, white_space="nowrap"),
        rx.table.row_header_cell(p.method),
        rx.table.cell(p.amount, text_align="right"),
        rx.table.cell(p.reference, rx.cond(p.reason != "", rx.text(p.reason, size="1"), rx.fragment())),
    )


def _small_table(headers: list[str], rows, render) -> rx.Component:
    return rx.box(rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in headers])),
        rx.table.body(rx.foreach(rows, render)), variant="surface", size="1", width="100%"),
        overflow_x="auto", width="100%")


def _totals(state) -> rx.Component:
    d = state.detail
    r = d.invoice

    def item(label: str, value, element_id: str = "") -> rx.Component:
        return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value, id=element_id or None))

    return rx.data_list.root(
        item("Charges", d.subtotal),
        rx.cond(d.discount_cents > 0, item("Discount", d.discount + " (" + d.discount_reason + ")"), rx.fragment()),
        item("Total", rx.text(r.total, weight="bold"), "invoice-total"),
        item("Paid", r.paid),
        item("Balance", rx.text(r.balance, weight="bold"), "invoice-balance"),
        rx.cond(r.insurer != "", item("Insurer", r.insurer + " · policy " + d.policy_number), rx.fragment()),
        rx.cond(r.insurer_share_cents > 0, item("Insurer's share", r.insurer_share + rx.cond(
            r.claim_status != "", " · claim " + r.claim_status, " · claim not submitted")), rx.fragment()),
        rx.cond(d.claim_note != "", item("Claim note", d.claim_note), rx.fragment()),
        rx.cond(r.status_value != "void", item("Due from the patient", r.patient_due), rx.fragment()),
        rx.cond(d.void_reason != "", item("Voided because", d.void_reason), rx.fragment()),
        orientation="horizontal", size="2",
    )


def _invoice_body(state) -> rx.Component:
    d = state.detail
    return rx.vstack(
        rx.heading("Charges", as_="h3", size="3"),
        rx.cond(d.lines.length() > 0,
                _small_table(["Date", "Service", "Qty", "Unit price", "Amount"], d.lines, _line_row),
                rx.text("No charges yet.", size="2", color=_MUTED)),
        _totals(state),
        rx.cond(d.payments.length() > 0,
                rx.vstack(rx.heading("Payments", as_="h3", size="3"),
                          _small_table(["Received", "Method", "Amount", "Reference"], d.payments, _payment_row),
                          width="100%", spacing="2"),
                rx.fragment()),
        spacing="3", width="100%",
    )


def _form(title: str, submit: str, handler, *fields: rx.Component, color: str = "indigo", key: rx.Var | None = None,
          confirm: rx.Component | None = None, form_id: str = "") -> rx.Component:
    """One of the invoice's forms. ``key``: its request key (a payment once, however often sent);
    ``confirm``: what asks before it is sent, in place of its submit button."""
    button = confirm if confirm is not None else submit_button(submit, color_scheme=color,
                                                               high_contrast=color != "indigo")
    return rx.form(rx.vstack(
        rx.heading(title, as_="h3", size="3"),
        rx.grid(*fields, columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%", align="end"),
        *([request_key_field(key)] if key is not None else []),
        button,
        spacing="2", align="start", width="100%"), on_submit=handler, reset_on_submit=True, width="100%",
        **({"id": form_id} if form_id else {}))


def _accounts_actions() -> rx.Component:
    s = AccountsInvoicesState
    r = s.detail.invoice
    is_open = (r.status_value == "issued") | (r.status_value == "partly_paid")
    return rx.vstack(
        rx.cond(r.status_value == "draft",
                rx.button("Issue invoice", on_click=s.issue, aria_label="Issue invoice: number it and send it to "
                          "the patient"),
                rx.fragment()),
        rx.cond(is_open, _form(
            "Record a payment", "Record payment", s.record_payment,
            field("Amount", "amount", required=True, field_id="pay-amount", input_mode="decimal",
                  default_value=r.balance, key=r.id.to_string() + "-" + r.paid, hint="At most the balance."),
            select_field("Method", "method", PAYMENT_METHODS, field_id="pay-method"),
            field("Reference", "reference", field_id="pay-reference", hint="Receipt, transaction or transfer id."),
            key=s.form_key),
            rx.fragment()),
        rx.cond((r.status_value == "draft") | is_open, _form(
            "Discount", "Save discount", s.discount,
            field("Discount amount", "amount", required=True, field_id="discount-amount", input_mode="decimal",
                  hint="Replaces any earlier discount; 0 removes it."),
            field("Reason", "reason", field_id="discount-reason", hint="Required for a discount.")),
            rx.fragment()),
        rx.cond((r.insurer != "") & (r.claim_status == "") & ((r.status_value == "draft") | is_open), _form(
            "Insurer's share", "Save share", s.insurer_share,
            field("Share expected from " + r.insurer, "amount", required=True, field_id="share-amount",
                  input_mode="decimal")),
            rx.fragment()),
        rx.cond((r.insurer_share_cents > 0) & (r.claim_status != "paid") & (r.claim_status != "rejected"), _form(
            "Insurance claim", "Update claim", s.claim,
            select_field("Mark the claim", "to_status", CLAIM_ACTIONS, field_id="claim-status"),
            field("Note", "note", field_id="claim-note", hint="A reason is required for a rejection.")),
            rx.fragment()),
        rx.cond(r.paid_cents != 0, _form(
            "Refund", "Record refund", s.refund,
            field("Refund amount", "amount", required=True, field_id="refund-amount", input_mode="decimal"),
            select_field("Paid back by", "method", PAYMENT_METHODS, field_id="refund-method"),
            field("Reason", "reason", required=True, field_id="refund-reason"), color="amber", key=s.form_key),
            rx.fragment()),
        rx.cond((r.status_value != "void") & (r.paid_cents == 0), _form(
            "Void", "Void invoice", s.void,
            field("Reason for voiding", "reason", required=True, field_id="void-reason"), form_id="void-form",
            confirm=confirm_dialog(
                "Void invoice " + r.number + "?",
                "The patient will no longer owe it; its charges stay on record with it. This cannot be undone.",
                confirm="Void invoice", form="void-form",
                trigger=rx.button("Void invoice", type="button", color_scheme="red", high_contrast=True))),
            rx.fragment()),
        spacing="4", width="100%",
    )


def _accounts_dialog() -> rx.Component:
    s = AccountsInvoicesState
    r = s.detail.invoice
    return dialog(
        "Invoice " + r.number,
        rx.vstack(
            _invoice_body(s),
            rx.separator(size="4"),
            _accounts_actions(),
            rx.hstack(
                rx.cond(r.number.startswith("INV"),
                        rx.button("Download PDF", variant="soft", on_click=s.download_pdf(r.id),
                                  aria_label="Download PDF of invoice " + r.number), rx.fragment()),
                close_button("Close", s.close_invoice),
                justify="end", width="100%", spacing="2"),
            spacing="4", margin_top="0.75rem"),
        title_aside=_status_badge(r),
        description=r.patient + " · " + r.mrn + rx.cond(r.issued != "", " · issued " + r.issued + " · due " + r.due,
                                                         " · not issued yet"),
        open=r.id != 0, on_close=s.close_invoice, max_width="52rem",
    )


def _accounts_row(r: InvoiceRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(r.number),
        rx.table.cell(r.patient, rx.text(r.mrn, size="1", color=_MUTED)),
        rx.table.cell(_status_badge(r), rx.cond(r.overdue, rx.text("overdue", size="1", color="var(--red-11)"),
                                                rx.fragment())),
        rx.table.cell(r.issued, white_space="nowrap"), rx.table.cell(r.due, white_space="nowrap"),
        rx.table.cell(r.total, text_align="right"), rx.table.cell(r.balance, text_align="right"),
        rx.table.cell(rx.cond(r.insurer != "", r.insurer + rx.cond(r.claim_status != "", " · " + r.claim_status, ""),
                              "self-pay")),
        rx.table.cell(rx.button("Open", size="1", on_click=AccountsInvoicesState.open_invoice(r.id),
                                aria_label="Open invoice " + r.number + " of " + r.patient)),
        data_invoice=r.id.to_string(),
    )


INVOICE_SHOW = [("open", "Open (issued or partly paid)"), ("overdue", "Overdue"), ("draft", "Being prepared (drafts)"),
                ("paid", "Paid"), ("void", "Void"), ("", "All invoices")]


def accounts_invoices_page() -> rx.Component:
    s = AccountsInvoicesState
    toolbar = rx.hstack(
        search_box(s, "Search invoices", "Number, patient or MRN"),
        filter_select("Show", "invoice-show", INVOICE_SHOW, s.filter_invoices),
        align="end", wrap="wrap", spacing="3")
    return page_shell(
        "Invoices",
        data_table(s, caption="Invoices",
                   columns=[("number", "Number"), ("patient", "Patient"), ("status", "Status"), ("", "Issued"),
                            ("due", "Due"), ("total", "Total"), ("balance", "Balance"), ("", "Payer"),
                            ("", "Actions")],
                   rows=s.rows, render_row=_accounts_row, toolbar=toolbar,
                   empty="No invoices match. Charges gather on drafts (choose Being prepared under Show) until "
                         "you issue them."),
        _accounts_dialog(),
    )


# --- the patient's invoices ----------------------------------------------------------------------


def _patient_card(r: InvoiceRow) -> rx.Component:
    s = PatientInvoicesState
    return rx.el.li(rx.card(
        rx.flex(rx.heading(rx.cond(r.status_value == "draft", "Invoice being prepared", "Invoice " + r.number),
                           as_="h2", size="3"),
                _status_badge(r), justify="between", align="center", wrap="wrap", spacing="2"),
        rx.text(rx.cond(r.issued != "", "Issued " + r.issued + " · due " + r.due,
                        "Charges are still being added; you can pay once it is issued."), size="2", color=_MUTED),
        rx.flex(
            rx.text("Total ", rx.text.strong(r.total, class_name="invoice-total")),
            rx.text("Balance ", rx.text.strong(r.balance)),
            rx.cond(r.insurer_share_cents > 0, rx.text("Expected from " + r.insurer + " " + r.insurer_share),
                    rx.fragment()),
            spacing="4", wrap="wrap", margin_top="0.5rem", size="2"),
        rx.flex(
            rx.button("Details", size="2", variant="soft", on_click=s.open_invoice(r.id),
                      aria_label="Details of invoice " + r.number),
            rx.cond(r.status_value != "draft",
                    rx.button("Download PDF", size="2", variant="soft", on_click=s.download_pdf(r.id),
                              aria_label="Download PDF of invoice " + r.number), rx.fragment()),
            rx.cond(r.patient_due_cents > 0,
                    rx.button("Pay " + r.patient_due, size="2", on_click=s.open_payment(r.id),
                              aria_label="Pay " + r.patient_due + " on invoice " + r.number), rx.fragment()),
            spacing="2", wrap="wrap", margin_top="0.75rem"),
        width="100%"), data_invoice=r.id.to_string())


def _patient_detail_dialog() -> rx.Component:
    s = PatientInvoicesState
    r = s.detail.invoice
    return dialog(
        rx.cond(r.status_value == "draft", "Invoice being prepared", "Invoice " + r.number),
        rx.vstack(_invoice_body(s),
                  rx.flex(close_button("Close", s.close_invoice), justify="end", width="100%"),
                  spacing="3", margin_top="0.75rem"),
        description=rx.cond(r.issued != "", "Issued " + r.issued + " · due " + r.due, "Not issued yet"),
        open=r.id != 0, on_close=s.close_invoice, max_width="44rem",
    )


def _pay_dialog() -> rx.Component:
    s = PatientInvoicesState
    r = s.paying
    return dialog(
        "Pay " + r.patient_due,
        rx.form(rx.vstack(
            field("Card number", "card_number", required=True, field_id="card-number", autocomplete="cc-number",
                  input_mode="numeric"),
            rx.grid(
                field("Expiry (MM/YY)", "expiry", required=True, field_id="card-expiry", autocomplete="cc-exp",
                      placeholder="MM/YY"),
                field("Security code", "cvc", required=True, field_id="card-cvc", autocomplete="cc-csc",
                      input_mode="numeric"),
                columns="2", spacing="3", width="100%"),
            form_buttons("Pay now", s.close_payment),
            spacing="3", margin_top="0.75rem"), on_submit=s.pay, reset_on_submit=False),
        description="Invoice " + r.number + ". This is a simulated card payment: no real card is charged. Test card "
                    "4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined.",
        open=r.id != 0, on_close=s.close_payment, max_width="28rem",
    )


def patient_invoices_page() -> rx.Component:
    """Cards rather than a table: they read well on a phone."""
    s = PatientInvoicesState
    return page_shell(
        "My invoices",
        rx.cond(
            s.rows.length() > 0,
            rx.el.ul(rx.foreach(s.rows, _patient_card), class_name="plain-list", width="100%",
                     aria_label="My invoices, newest first"),
            rx.callout("No invoices yet. Charges for consultations, tests and medicines appear here; you can pay "
                       "an invoice once it is issued.", icon="info", color_scheme="gray", width="100%"),
        ),
        pager(s),
        _patient_detail_dialog(),
        _pay_dialog(),
    )
