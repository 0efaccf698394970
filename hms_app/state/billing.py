"""Invoices: accounts work them (issue, discount, payments, refunds, insurance, void); the
patient reads, downloads and pays their own."""

from __future__ import annotations

import reflex as rx

from hms_app.services.accounting import billing
from hms_app.services.accounting.billing import InvoiceDetail, InvoiceRow
from hms_app.services.core import receipts
from hms_app.services.core.language import _
from hms_app.state.auth import SessionState, file_download
from hms_app.state.forms import form_text
from hms_app.state.tables import PagedTableMixin

_NO_ROW = InvoiceRow(0, "", "", "", "", "", "", "", "", "", "", "", 0, "", "", "", False)
_NO_DETAIL = InvoiceDetail(_NO_ROW, "", "", "", "", "", "", 0, [], [])


class _InvoiceDialogMixin(rx.State, mixin=True):
    """An invoice opened in a dialog, and its PDF."""

    detail: InvoiceDetail = _NO_DETAIL

    async def _load_detail(self, invoice_id: int) -> None:
        self.detail = await self._call(billing.invoice_detail, invoice_id=invoice_id)  # type: ignore[attr-defined]

    def _opened(self) -> None:
        """What else a state readies when an invoice opens (its forms' keys)."""

    @rx.event
    async def open_invoice(self, invoice_id: int):
        answer = await self._act(self._load_detail(invoice_id))  # type: ignore[attr-defined]
        if answer.refused:
            self.detail = _NO_DETAIL
        else:
            self._opened()
        return answer

    @rx.event
    def close_invoice(self):
        self.detail = _NO_DETAIL

    @rx.event
    async def download_pdf(self, invoice_id: int):
        return await self._act(billing.invoice_pdf, invoice_id=invoice_id, success=file_download)  # type: ignore[attr-defined]


class AccountsInvoicesState(_InvoiceDialogMixin, PagedTableMixin, SessionState):
    rows: list[InvoiceRow] = []
    show: str = "open"
    sort: str = "created"
    descending: bool = True
    form_key: str = ""
    """The payment and refund forms' request key (``receipts``): new when the invoice opens and
    after each payment or refund, so that only a repeat of one submission carries it twice."""

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(
            billing.list_invoices, write=False, search=self.search, show=self.show, sort=self.sort,
            descending=self.descending, page=self.page, page_size=self.page_size))
        if self.detail.invoice.id:
            await self._load_detail(self.detail.invoice.id)

    @rx.event
    async def filter_invoices(self, show: str):
        self.show = str(show) if str(show) in billing.INVOICE_FILTERS else ""
        self.page = 1
        return await self._reload()

    def _opened(self) -> None:
        self.form_key = receipts.new_request_key()

    async def _work(self, service, success, **kwargs):
        """One step of work on the invoice open in the dialog."""
        return await self._act(service, invoice_id=self.detail.invoice.id, refresh=self._reload, success=success,
                               **kwargs)

    async def _move_money(self, service, success, form_data: dict, **kwargs):
        """A payment or a refund, once however often its form is sent (``receipts``)."""
        answer = await self._work(service, success, request_key=form_text(form_data, "request_key", 64), **kwargs)
        if not answer.refused:
            self.form_key = receipts.new_request_key()
        return answer

    @rx.event
    async def issue(self):
        return await self._work(billing.issue_invoice, lambda number: _("Invoice {number} issued; the patient is told.").format(number=number))

    @rx.event
    async def discount(self, form_data: dict):
        return await self._work(billing.apply_discount, _("Discount saved."), amount=form_text(form_data, "amount", 20),
                                reason=form_text(form_data, "reason", 400))

    @rx.event
    async def record_payment(self, form_data: dict):
        await self._hold_submits()
        yield
        yield await self._move_money(
            billing.record_payment, lambda status: _("Payment recorded; the invoice is {status}.").format(status=status), form_data,
            amount=form_text(form_data, "amount", 20), method=form_text(form_data, "method", 20),
            reference=form_text(form_data, "reference", 100))

    @rx.event
    async def refund(self, form_data: dict):
        await self._hold_submits()
        yield
        yield await self._move_money(
            billing.refund_payment, lambda status: _("Refund recorded; the invoice is {status}.").format(status=status), form_data,
            amount=form_text(form_data, "amount", 20), reason=form_text(form_data, "reason", 400),
            method=form_text(form_data, "method", 20))

    @rx.event
    async def insurer_share(self, form_data: dict):
        return await self._work(billing.set_insurer_share, _("Insurer's share saved."),
                                amount=form_text(form_data, "amount", 20))

    @rx.event
    async def claim(self, form_data: dict):
        return await self._work(billing.move_claim, _("Claim updated."), to_status=form_text(form_data, "to_status", 20),
                                note=form_text(form_data, "note", 400))

    @rx.event
    async def void(self, form_data: dict):
        return await self._work(billing.void_invoice, _("Invoice voided."), reason=form_text(form_data, "reason", 400))


class PatientInvoicesState(_InvoiceDialogMixin, PagedTableMixin, SessionState):
    rows: list[InvoiceRow] = []
    paying: InvoiceRow = _NO_ROW
    _paying_id: int = 0
    _payment_key: str = ""

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(billing.my_invoices, write=False, page=self.page,
                                                 page_size=self.page_size))

    @rx.event
    def open_payment(self, invoice_id: int):
        """A fresh key per opened form: a double click or a retry of this form charges once."""
        self.paying = next((r for r in self.rows if r.id == invoice_id), _NO_ROW)
        self._paying_id, self._payment_key = self.paying.id, billing.new_payment_key()

    @rx.event
    def close_payment(self):
        self.paying = _NO_ROW

    @rx.event
    async def pay(self, form_data: dict):
        answer = await self._act(
            billing.pay_online, invoice_id=self._paying_id, card_number=form_text(form_data, "card_number", 40),
            expiry=form_text(form_data, "expiry", 10), cvc=form_text(form_data, "cvc", 10),
            idempotency_key=self._payment_key, refresh=self._reload, success=_paid)
        if not answer.refused:
            self.paying = _NO_ROW  # the key stays: a second click of the same form finds this payment
        return answer


def _paid(paid: billing.OnlinePayment):
    if paid.repeated:
        return rx.toast.info(_("This payment was already made ({reference}); nothing more was charged.").format(
            reference=paid.reference))
    return rx.toast.success(_("Paid {amount} by card ({reference}). Thank you.").format(amount=paid.amount,
                                                                                 reference=paid.reference))
