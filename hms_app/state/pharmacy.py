"""The pharmacy's pages: the prescription queue and dispensing, stock and its ledger, the
dashboard's alerts; and the patient's own prescriptions."""

from __future__ import annotations

import reflex as rx

from hms_app.services.core import receipts
from hms_app.services.core.language import _
from hms_app.services.core.numbers import format_money
from hms_app.services.medicines import inventory, pharmacy
from hms_app.services.medicines.inventory import (
    BatchRow,
    MedicineChoice,
    MedicineForm,
    MovementRow,
    ReceiveForm,
    StockAlerts,
    StockRow,
)
from hms_app.services.medicines.pharmacy import (
    DispenseView,
    PatientPrescription,
    QueueCounts,
    QueueRow,
)
from hms_app.state.auth import SessionState
from hms_app.state.forms import form_text
from hms_app.state.tables import PagedTableMixin

_NO_VIEW = DispenseView(0, "", "", "", "", "", [])
_NO_ALERTS = StockAlerts(0, 0, 0, format_money(0), format_money(0), [], [], [])
_NO_STOCK = StockRow(0, "", "", "", "", 0, 0, 0, "", False, "")
QUANTITY_PREFIX = "qty-"


class PharmacyQueueState(PagedTableMixin, SessionState):
    """The prescription queue: verify, reject with a reason, dispense item by item."""

    rows: list[QueueRow] = []
    show: str = ""
    rejecting_id: int = 0
    rejecting_patient: str = ""
    dispensing: DispenseView = _NO_VIEW
    form_key: str = ""
    """The dispensing form's request key (``receipts``): new when the form opens and after each dispensing."""
    _dispensing_id: int = 0
    """The prescription the dispensing form was opened for; kept once it closes, for a repeat to find."""

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(pharmacy.prescription_queue, show=self.show, search=self.search,
                                                 page=self.page, page_size=self.page_size))
        if self.dispensing.id:
            await self._load_dispensing(self.dispensing.id)

    async def _load_dispensing(self, prescription_id: int) -> None:
        self.dispensing = await self._call(pharmacy.dispense_view, prescription_id=prescription_id)

    async def _work(self, service, success, **kwargs):
        """One step of a prescription's work; the queue is shown afresh either way."""
        return await self._act(service, refresh=self._reload, on_refusal=self._reload, success=success, **kwargs)

    @rx.event
    async def filter_queue(self, show: str):
        self.show = str(show)[:10] if str(show) in pharmacy.QUEUE_FILTERS else ""
        self.page = 1
        return await self._reload()

    @rx.event
    async def verify(self, prescription_id: int):
        return await self._work(pharmacy.verify_prescription, _("Prescription verified; it can now be dispensed."),
                               prescription_id=prescription_id)

    @rx.event
    def ask_reject(self, prescription_id: int):
        row = next((r for r in self.rows if r.id == prescription_id), None)
        self.rejecting_id = row.id if row is not None else 0
        self.rejecting_patient = row.patient if row is not None else ""

    @rx.event
    def close_reject(self):
        self.rejecting_id = 0

    @rx.event
    async def reject(self, form_data: dict):
        outcome = await self._work(pharmacy.reject_prescription, _("Prescription rejected; the doctor has been told why."),
                                  prescription_id=self.rejecting_id, reason=form_text(form_data, "reason"))
        if not any(r.id == self.rejecting_id and r.status_value != "rejected" for r in self.rows):
            self.rejecting_id = 0
        return outcome

    @rx.event
    async def open_dispense(self, prescription_id: int):
        answer = await self._act(self._load_dispensing(prescription_id))
        if answer.refused:
            self.dispensing = _NO_VIEW
        else:
            self._dispensing_id, self.form_key = self.dispensing.id, receipts.new_request_key()
        return answer

    @rx.event
    def close_dispense(self):
        self.dispensing = _NO_VIEW

    @rx.event
    async def dispense(self, form_data: dict):
        quantities = {key.removeprefix(QUANTITY_PREFIX): form_text(form_data, key, 12)
                      for key in (form_data if isinstance(form_data, dict) else {})
                      if isinstance(key, str) and key.startswith(QUANTITY_PREFIX)}
        await self._hold_submits()
        yield
        outcome = await self._work(
            pharmacy.dispense, lambda r: _("{summary} The prescription is now {status}.").format(summary=r.summary, status=r.status),
            prescription_id=self._dispensing_id, quantities=quantities,
            request_key=form_text(form_data, "request_key", 64))
        if not outcome.refused:
            self.form_key = receipts.new_request_key()
        if self.dispensing.status_value == "dispensed":
            self.dispensing = _NO_VIEW
        yield outcome


def _medicine_form(form_data: dict) -> MedicineForm:
    return MedicineForm(
        name=form_text(form_data, "name", 200), form=form_text(form_data, "form", 100),
        strength=form_text(form_data, "strength", 100), unit_price=form_text(form_data, "unit_price", 20),
        reorder_level=form_text(form_data, "reorder_level", 20),
        ingredients=form_text(form_data, "ingredients", 400), drug_class=form_text(form_data, "drug_class", 100))


class InventoryState(PagedTableMixin, SessionState):
    """Stock by medicine: receive deliveries, see and adjust batches, edit or add medicines."""

    rows: list[StockRow] = []
    sort: str = "name"
    show: str = ""
    medicines: list[MedicineChoice] = []
    receiving: bool = False
    receive_for: int = 0
    batches_of: StockRow = _NO_STOCK
    batches: list[BatchRow] = []
    editing: StockRow = _NO_STOCK
    adding: bool = False

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(
            inventory.stock_list, write=False, search=self.search, show=self.show, sort=self.sort,
            descending=self.descending, page=self.page, page_size=self.page_size))
        if self.batches_of.id:
            await self._load_batches(self.batches_of.id)

    async def _load_batches(self, medicine_id: int) -> None:
        self.batches = await self._call(inventory.medicine_batches, write=False, medicine_id=medicine_id)
        self.batches_of = next((r for r in self.rows if r.id == medicine_id), self.batches_of)

    async def _edit(self, service, success: str, **kwargs):
        """A change to the stock; the list is shown afresh once it is made."""
        return await self._act(service, refresh=self._reload, success=success, **kwargs)

    @rx.event
    async def filter_stock(self, show: str):
        self.show = str(show) if str(show) in inventory.STOCK_FILTERS else ""
        self.page = 1
        return await self._reload()

    @rx.event
    async def open_receive(self, medicine_id: int):
        if not self.medicines:
            answer = await self._act(inventory.medicine_choices, write=False)
            if answer.refused:
                return answer
            self.medicines = answer.result
        self.receive_for = medicine_id if isinstance(medicine_id, int) else 0
        self.receiving = True
        return None

    @rx.event
    def close_receive(self):
        self.receiving = False

    @rx.event
    async def receive(self, form_data: dict):
        form = ReceiveForm(
            medicine_id=form_text(form_data, "medicine_id", 20), lot=form_text(form_data, "lot", 100),
            expiry=form_text(form_data, "expiry", 20), quantity=form_text(form_data, "quantity", 20),
            unit_cost=form_text(form_data, "unit_cost", 20), supplier=form_text(form_data, "supplier", 200))
        answer = await self._edit(inventory.receive_stock, _("Received {quantity} units of lot {lot} into stock.").format(
                                      quantity=form.quantity, lot=form.lot.strip().upper()), form=form)
        if not answer.refused:
            self.receiving = False
        return answer

    @rx.event
    async def open_batches(self, medicine_id: int):
        self.batches_of = next((r for r in self.rows if r.id == medicine_id), _NO_STOCK)
        answer = await self._act(self._load_batches(medicine_id))
        if answer.refused:
            self.batches_of = _NO_STOCK
        return answer

    @rx.event
    def close_batches(self):
        self.batches_of, self.batches = _NO_STOCK, []

    @rx.event
    async def adjust(self, form_data: dict):
        return await self._edit(
            inventory.adjust_stock, _("Stock adjusted and recorded in the ledger."),
            batch_id=form_text(form_data, "batch_id", 20), reason=form_text(form_data, "reason", 30),
            change=form_text(form_data, "change", 20), note=form_text(form_data, "note", 400))

    @rx.event
    def open_edit(self, medicine_id: int):
        self.editing = next((r for r in self.rows if r.id == medicine_id), _NO_STOCK)

    @rx.event
    def close_edit(self):
        self.editing = _NO_STOCK

    @rx.event
    async def save_medicine(self, form_data: dict):
        answer = await self._edit(
            inventory.edit_medicine, _("Medicine saved. Dispensing from now on uses its price."),
            medicine_id=self.editing.id, form=_medicine_form(form_data))
        if not answer.refused:
            self.editing, self.medicines = _NO_STOCK, []
        return answer

    @rx.event
    async def toggle_medicine(self, medicine_id: int, active: bool):
        return await self._edit(inventory.set_medicine_active,
                                _("Medicine back in the formulary.") if active else
                                _("Medicine taken off the formulary: doctors can no longer prescribe it."),
                                medicine_id=medicine_id, active=bool(active))

    @rx.event
    def open_add(self):
        self.adding = True

    @rx.event
    def close_add(self):
        self.adding = False

    @rx.event
    async def add_medicine(self, form_data: dict):
        form = _medicine_form(form_data)
        answer = await self._edit(inventory.add_medicine, _("{name} added to the formulary.").format(name=form.name.strip()), form=form)
        if not answer.refused:
            self.adding, self.medicines = False, []
        return answer


class StockLedgerState(PagedTableMixin, SessionState):
    rows: list[MovementRow] = []
    sort: str = "when"
    descending: bool = True

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(
            inventory.stock_ledger, write=False, search=self.search, sort=self.sort, descending=self.descending,
            page=self.page, page_size=self.page_size))


class PharmacyDashboardState(SessionState):
    alerts: StockAlerts = _NO_ALERTS
    counts: QueueCounts = QueueCounts(0, 0)

    async def _fetch(self) -> None:
        self.counts = await self._call(pharmacy.queue_counts, write=False)
        self.alerts = await self._call(inventory.stock_alerts, write=False)

    async def _load(self):
        return await self._act(self._fetch())

    @rx.event
    async def load_dashboard(self):
        return await self._load()


class PatientPrescriptionsState(PagedTableMixin, SessionState):
    rows: list[PatientPrescription] = []

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(pharmacy.my_prescriptions, write=False, page=self.page,
                                                 page_size=self.page_size))
