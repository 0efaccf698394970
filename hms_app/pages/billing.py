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
from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table, pager, search_box
from hms_app.services.accounting.billing import (
    CLAIM_ACTIONS,
    PAYMENT_METHODS,
    InvoiceRow,
    LineView,
    PaymentView,
)
from hms_app.services.core.language import N_
from hms_app.state.billing import AccountsInvoicesState, PatientInvoicesState

_MUTED = "var(--gray-11)"


def _status_badge(r: InvoiceRow) -> rx.Component:
    return rx.badge(r.status, high_contrast=True, variant="soft", class_name="invoice-status", data_status=r.status_value,
                    color_scheme=rx.match(r.status_value, ("draft", "gray"), ("issued", "blue"),
                                          ("partly_paid", "amber"), ("paid", "grass"), "red"))


def _claim(status: rx.Var) -> rx.Var:
    """An insurance claim's status (a value of ``ClaimStatus``) in words."""
    return rx.match(status, ("submitted", t("submitted")), ("approved", t("approved")),
                    ("rejected", t("rejected")), ("paid", t("paid")), status).to(str)


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
    """``headers``: ``N_``-marked column titles, shown translated."""
    return rx.box(rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(t(h), scope="col") for h in headers])),
        rx.table.body(rx.foreach(rows, render)), variant="surface", size="1", width="100%"),
        overflow_x="auto", width="100%")


def _totals(state) -> rx.Component:
    d = state.detail
    r = d.invoice

    def item(label: rx.Var, value, element_id: str = "") -> rx.Component:
        return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value, id=element_id or None))

    return rx.data_list.root(
        item(t("Charges"), d.subtotal),
        rx.cond(d.discount_cents > 0, item(t("Discount"), d.discount + " (" + d.discount_reason + ")"),
                rx.fragment()),
        item(t("Total"), rx.text(r.total, weight="bold"), "invoice-total"),
        item(t("Paid"), r.paid),
        item(t("Balance"), rx.text(r.balance, weight="bold"), "invoice-balance"),
        rx.cond(r.insurer != "", item(t("Insurer"), t("{insurer} · policy {policy}", insurer=r.insurer,
                                                       policy=d.policy_number)), rx.fragment()),
        rx.cond(r.insurer_share_cents > 0, item(t("Insurer's share"), rx.cond(
            r.claim_status != "", t("{share} · claim {status}", share=r.insurer_share, status=_claim(r.claim_status)),
            t("{share} · claim not submitted", share=r.insurer_share))), rx.fragment()),
        rx.cond(d.claim_note != "", item(t("Claim note"), d.claim_note), rx.fragment()),
        rx.cond(r.status_value != "void", item(t("Due from the patient"), r.patient_due), rx.fragment()),
        rx.cond(d.void_reason != "", item(t("Voided because"), d.void_reason), rx.fragment()),
        orientation="horizontal", size="2",
    )


def _invoice_body(state) -> rx.Component:
    d = state.detail
    return rx.vstack(
        rx.heading(t("Charges"), as_="h3", size="3"),
        rx.cond(d.lines.length() > 0,
                _small_table([N_("Date"), N_("Service"), N_("Qty"), N_("Unit price"), N_("Amount")], d.lines,
                             _line_row),
                rx.text(t("No charges yet."), size="2", color=_MUTED)),
        _totals(state),
        rx.cond(d.payments.length() > 0,
                rx.vstack(rx.heading(t("Payments"), as_="h3", size="3"),
                          _small_table([N_("Received"), N_("Method"), N_("Amount"), N_("Reference")], d.payments,
                                       _payment_row),
                          width="100%", spacing="2"),
                rx.fragment()),
        spacing="3", width="100%",
    )


def _form(title: rx.Var, submit: rx.Var, handler, *fields: rx.Component, color: str = "indigo", key: rx.Var | None = None,
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
                rx.button(t("Issue invoice"), on_click=s.issue,
                          aria_label=t("Issue invoice: number it and send it to the patient")),
                rx.fragment()),
        rx.cond(is_open, _form(
            t("Record a payment"), t("Record payment"), s.record_payment,
            field(N_("Amount"), "amount", required=True, field_id="pay-amount", input_mode="decimal",
                  default_value=r.balance, key=r.id.to_string() + "-" + r.paid, hint=N_("At most the balance.")),
            select_field(N_("Method"), "method", PAYMENT_METHODS, field_id="pay-method"),
            field(N_("Reference"), "reference", field_id="pay-reference",
                  hint=N_("Receipt, transaction or transfer id.")),
            key=s.form_key),
            rx.fragment()),
        rx.cond((r.status_value == "draft") | is_open, _form(
            t("Discount"), t("Save discount"), s.discount,
            field(N_("Discount amount"), "amount", required=True, field_id="discount-amount", input_mode="decimal",
                  hint=N_("Replaces any earlier discount; 0 removes it.")),
            field(N_("Reason"), "reason", field_id="discount-reason", hint=N_("Required for a discount."))),
            rx.fragment()),
        rx.cond((r.insurer != "") & (r.claim_status == "") & ((r.status_value == "draft") | is_open), _form(
            t("Insurer's share"), t("Save share"), s.insurer_share,
            field(t("Share expected from {insurer}", insurer=r.insurer), "amount", required=True,
                  field_id="share-amount", input_mode="decimal")),
            rx.fragment()),
        rx.cond((r.insurer_share_cents > 0) & (r.claim_status != "paid") & (r.claim_status != "rejected"), _form(
            t("Insurance claim"), t("Update claim"), s.claim,
            select_field(N_("Mark the claim"), "to_status", CLAIM_ACTIONS, field_id="claim-status"),
            field(N_("Note"), "note", field_id="claim-note", hint=N_("A reason is required for a rejection."))),
            rx.fragment()),
        rx.cond(r.paid_cents != 0, _form(
            t("Refund"), t("Record refund"), s.refund,
            field(N_("Refund amount"), "amount", required=True, field_id="refund-amount", input_mode="decimal"),
            select_field(N_("Paid back by"), "method", PAYMENT_METHODS, field_id="refund-method"),
            field(N_("Reason"), "reason", required=True, field_id="refund-reason"), color="amber", key=s.form_key),
            rx.fragment()),
        rx.cond((r.status_value != "void") & (r.paid_cents == 0), _form(
            t("Void"), t("Void invoice"), s.void,
            field(N_("Reason for voiding"), "reason", required=True, field_id="void-reason"), form_id="void-form",
            confirm=confirm_dialog(
                t("Void invoice {number}?", number=r.number),
                t("The patient will no longer owe it; its charges stay on record with it. This cannot be undone."),
                confirm=t("Void invoice"), form="void-form",
                trigger=rx.button(t("Void invoice"), type="button", color_scheme="red", high_contrast=True))),
            rx.fragment()),
        spacing="4", width="100%",
    )


def _accounts_dialog() -> rx.Component:
    s = AccountsInvoicesState
    r = s.detail.invoice
    return dialog(
        t("Invoice {number}", number=r.number),
        rx.vstack(
            _invoice_body(s),
            rx.separator(size="4"),
            _accounts_actions(),
            rx.hstack(
                rx.cond(r.number.startswith("INV"),
                        rx.button(t("Download PDF"), variant="soft", on_click=s.download_pdf(r.id),
                                  aria_label=t("Download PDF of invoice {number}", number=r.number)), rx.fragment()),
                close_button(t("Close"), s.close_invoice),
                justify="end", width="100%", spacing="2"),
            spacing="4", margin_top="0.75rem"),
        title_aside=_status_badge(r),
        description=rx.cond(r.issued != "",
                            t("{patient} · {mrn} · issued {issued} · due {due}", patient=r.patient, mrn=r.mrn,
                              issued=r.issued, due=r.due),
                            t("{patient} · {mrn} · not issued yet", patient=r.patient, mrn=r.mrn)),
        open=r.id != 0, on_close=s.close_invoice, max_width="52rem",
    )


def _accounts_row(r: InvoiceRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(r.number),
        rx.table.cell(r.patient, rx.text(r.mrn, size="1", color=_MUTED)),
        rx.table.cell(_status_badge(r), rx.cond(r.overdue, rx.text(t("overdue"), size="1", color="var(--red-11)"),
                                                rx.fragment())),
        rx.table.cell(r.issued, white_space="nowrap"), rx.table.cell(r.due, white_space="nowrap"),
        rx.table.cell(r.total, text_align="right"), rx.table.cell(r.balance, text_align="right"),
        rx.table.cell(rx.cond(r.insurer != "", r.insurer + rx.cond(r.claim_status != "", " · " + _claim(r.claim_status),
                                                                   ""),
                              t("self-pay"))),
        rx.table.cell(rx.button(t("Open"), size="1", on_click=AccountsInvoicesState.open_invoice(r.id),
                                aria_label=t("Open invoice {number} of {patient}", number=r.number,
                                             patient=r.patient))),
        data_invoice=r.id.to_string(),
    )


INVOICE_SHOW = [("open", N_("Open (issued or partly paid)")), ("overdue", N_("Overdue")),
                ("draft", N_("Being prepared (drafts)")), ("paid", N_("Paid")), ("void", N_("Void")),
                ("", N_("All invoices"))]


def accounts_invoices_page() -> rx.Component:
    s = AccountsInvoicesState
    toolbar = rx.hstack(
        search_box(s, N_("Search invoices"), N_("Number, patient or MRN")),
        filter_select(N_("Show"), "invoice-show", INVOICE_SHOW, s.filter_invoices),
        align="end", wrap="wrap", spacing="3")
    return page_shell(
        t("Invoices"),
        data_table(s, caption=N_("Invoices"),
                   columns=[("number", N_("Number")), ("patient", N_("Patient")), ("status", N_("Status")),
                            ("", N_("Issued")), ("due", N_("Due")), ("total", N_("Total")), ("balance", N_("Balance")),
                            ("", N_("Payer")), ("", N_("Actions"))],
                   rows=s.rows, render_row=_accounts_row, toolbar=toolbar,
                   empty=N_("No invoices match. Charges gather on drafts (choose Being prepared under Show) until "
                            "you issue them.")),
        _accounts_dialog(),
    )


# --- the patient's invoices ----------------------------------------------------------------------


def _patient_card(r: InvoiceRow) -> rx.Component:
    s = PatientInvoicesState
    return rx.el.li(rx.card(
        rx.flex(rx.heading(rx.cond(r.status_value == "draft", t("Invoice being prepared"),
                                   t("Invoice {number}", number=r.number)),
                           as_="h2", size="3"),
                _status_badge(r), justify="between", align="center", wrap="wrap", spacing="2"),
        rx.text(rx.cond(r.issued != "", t("Issued {issued} · due {due}", issued=r.issued, due=r.due),
                        t("Charges are still being added; you can pay once it is issued.")), size="2", color=_MUTED),
        rx.flex(
            rx.text(t("Total"), " ", rx.text.strong(r.total, class_name="invoice-total")),
            rx.text(t("Balance"), " ", rx.text.strong(r.balance)),
            rx.cond(r.insurer_share_cents > 0,
                    rx.text(t("Expected from {insurer} {share}", insurer=r.insurer, share=r.insurer_share)),
                    rx.fragment()),
            spacing="4", wrap="wrap", margin_top="0.5rem", size="2"),
        rx.flex(
            rx.button(t("Details"), size="2", variant="soft", on_click=s.open_invoice(r.id),
                      aria_label=t("Details of invoice {number}", number=r.number)),
            rx.cond(r.status_value != "draft",
                    rx.button(t("Download PDF"), size="2", variant="soft", on_click=s.download_pdf(r.id),
                              aria_label=t("Download PDF of invoice {number}", number=r.number)), rx.fragment()),
            rx.cond(r.patient_due_cents > 0,
                    rx.button(t("Pay {amount}", amount=r.patient_due), size="2", on_click=s.open_payment(r.id),
                              aria_label=t("Pay {amount} on invoice {number}", amount=r.patient_due,
                                           number=r.number)), rx.fragment()),
            spacing="2", wrap="wrap", margin_top="0.75rem"),
        width="100%"), data_invoice=r.id.to_string())


def _patient_detail_dialog() -> rx.Component:
    s = PatientInvoicesState
    r = s.detail.invoice
    return dialog(
        rx.cond(r.status_value == "draft", t("Invoice being prepared"), t("Invoice {number}", number=r.number)),
        rx.vstack(_invoice_body(s),
                  rx.flex(close_button(t("Close"), s.close_invoice), justify="end", width="100%"),
                  spacing="3", margin_top="0.75rem"),
        description=rx.cond(r.issued != "", t("Issued {issued} · due {due}", issued=r.issued, due=r.due),
                            t("Not issued yet")),
        open=r.id != 0, on_close=s.close_invoice, max_width="44rem",
    )


def _pay_dialog() -> rx.Component:
    s = PatientInvoicesState
    r = s.paying
    return dialog(
        t("Pay {amount}", amount=r.patient_due),
        rx.form(rx.vstack(
            field(N_("Card number"), "card_number", required=True, field_id="card-number", autocomplete="cc-number",
                  input_mode="numeric"),
            rx.grid(
                field(N_("Expiry (MM/YY)"), "expiry", required=True, field_id="card-expiry", autocomplete="cc-exp",
                      placeholder=N_("MM/YY")),
                field(N_("Security code"), "cvc", required=True, field_id="card-cvc", autocomplete="cc-csc",
                      input_mode="numeric"),
                columns="2", spacing="3", width="100%"),
            form_buttons(t("Pay now"), s.close_payment),
            spacing="3", margin_top="0.75rem"), on_submit=s.pay, reset_on_submit=False),
        description=t("Invoice {number}. This is a simulated card payment: no real card is charged. Test card "
                      "4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined.", number=r.number),
        open=r.id != 0, on_close=s.close_payment, max_width="28rem",
    )


def patient_invoices_page() -> rx.Component:
    """Cards rather than a table: they read well on a phone."""
    s = PatientInvoicesState
    return page_shell(
        t("My invoices"),
        rx.cond(
            s.rows.length() > 0,
            rx.el.ul(rx.foreach(s.rows, _patient_card), class_name="plain-list", width="100%",
                     aria_label=t("My invoices, newest first")),
            rx.callout(t("No invoices yet. Charges for consultations, tests and medicines appear here; you can pay "
                         "an invoice once it is issued."), icon="info", color_scheme="gray", width="100%"),
        ),
        pager(s),
        _patient_detail_dialog(),
        _pay_dialog(),
    )
