"""The reference lists kept at go-live and after: the lab catalog (lab staff and admin) and the
price list (accounts and admin, each price saved by the service of the role that owns it)."""

from __future__ import annotations

import reflex as rx

from hms_app.services.accounting import prices
from hms_app.services.accounting.prices import PriceRow, ServicePriceForm
from hms_app.services.administration import departments
from hms_app.services.core.language import _
from hms_app.services.laboratory import catalog
from hms_app.services.laboratory.catalog import BandRow, LabTestForm, LabTestRow
from hms_app.services.medicines import inventory
from hms_app.state.auth import SessionState
from hms_app.state.forms import form_text
from hms_app.state.tables import PagedTableMixin

_NO_TEST = LabTestRow(0, "", "", "", "", "", "", "", "", "", "", True, "", False)
_NEW_BAND = BandRow("any", "0", "200", "", "")
BAND_FIELDS = ("sex", "age_min", "age_max", "low", "high")
ADDING = -1
"""``LabCatalogState.editing_id`` while the dialog adds a test."""


class LabCatalogState(PagedTableMixin, SessionState):
    """The lab catalog: the table, and one dialog that adds a test or edits one, its ranges as rows."""

    rows: list[LabTestRow] = []
    sort: str = "name"
    show: str = ""
    editing_id: int = 0
    """0: the dialog is closed; ``ADDING``: it adds a test; else the id of the test it edits."""
    editing: LabTestRow = _NO_TEST
    bands: list[BandRow] = []
    band_version: int = 0
    """Moves when a range row is removed, so that the rows' inputs are drawn afresh from ``bands``."""
    numeric: bool = True
    form_error: str = ""

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(
            catalog.list_lab_tests, write=False, search=self.search, show=self.show, sort=self.sort,
            descending=self.descending, page=self.page, page_size=self.page_size))

    @rx.event
    async def filter_catalog(self, show: str):
        self.show = str(show) if str(show) in catalog.CATALOG_FILTERS else ""
        self.page = 1
        return await self._reload()

    @rx.event
    def open_add(self):
        self.editing_id, self.editing, self.numeric = ADDING, _NO_TEST, True
        self.bands, self.form_error = [_NEW_BAND], ""
        self.band_version += 1

    @rx.event
    def open_edit(self, test_id: int):
        row = next((r for r in self.rows if r.id == test_id), None)
        if row is None:
            return
        self.editing_id, self.editing, self.numeric = row.id, row, row.numeric
        self.bands, self.form_error = list(row.bands) or [_NEW_BAND], ""
        self.band_version += 1

    @rx.event
    def close_edit(self):
        self.editing_id, self.editing, self.bands, self.form_error = 0, _NO_TEST, [], ""

    @rx.event
    def choose_results(self, results: str):
        self.numeric = str(results) != "text"

    @rx.event
    def note_band(self, index: int, name: str, value: str):
        """Keep what was typed in a range row, so that it survives another row's removal."""
        if not isinstance(index, int) or not 0 <= index < len(self.bands) or name not in BAND_FIELDS:
            return
        bands = list(self.bands)
        bands[index] = BandRow(**{**bands[index].__dict__, name: str(value)[:20]})
        self.bands = bands

    @rx.event
    def add_band(self):
        if len(self.bands) < catalog.MAX_BANDS:
            self.bands = [*self.bands, _NEW_BAND]

    @rx.event
    def remove_band(self, index: int):
        if isinstance(index, int) and 0 <= index < len(self.bands):
            self.bands = [b for i, b in enumerate(self.bands) if i != index]
            self.band_version += 1

    def _form(self, form_data: dict) -> LabTestForm:
        numeric = form_text(form_data, "results", 10) != "text"
        bands = [{name: form_text(form_data, f"{name}-{i}", 20) for name in BAND_FIELDS}
                 for i in range(min(len(self.bands), catalog.MAX_BANDS))] if numeric else []
        return LabTestForm(
            code=form_text(form_data, "code", 40), name=form_text(form_data, "name", 200),
            specimen=form_text(form_data, "specimen", 100), unit=form_text(form_data, "unit", 60),
            price=form_text(form_data, "price", 20), numeric=numeric, ranges=bands,
            critical_low=form_text(form_data, "critical_low", 20) if numeric else "",
            critical_high=form_text(form_data, "critical_high", 20) if numeric else "",
            release_rule=form_text(form_data, "release_rule", 20))

    @rx.event
    async def save_test(self, form_data: dict):
        form = self._form(form_data)
        if self.editing_id == ADDING:
            answer = await self._act(catalog.add_lab_test, form=form, refresh=self._reload,
                                     success=_("{name} added to the lab catalog.").format(name=form.name.strip()))
        else:
            answer = await self._act(
                catalog.update_lab_test, test_id=self.editing_id, form=form, refresh=self._reload,
                success=lambda changed: (_("{name} saved. Results entered from now on use its ranges; "
                                           "charges from now on its price.").format(name=form.name.strip())
                                         if changed else _("Nothing was changed.")))
        self.form_error = answer.error
        if not answer.refused:
            self.close_edit()
        return answer

    @rx.event
    async def toggle_test(self, test_id: int, active: bool):
        return await self._act(catalog.set_lab_test_active, test_id=test_id, active=bool(active), refresh=self._reload,
                               success=_("Test reactivated: doctors can order it again.") if active
                               else _("Test deactivated: doctors can no longer order it."))


_NO_PRICE = PriceRow("", "", 0, "", "", "", "", "", True, "", False)
_PRICE_SAVERS = {
    "service": (prices.set_service_price, "price_id", "price"),
    "consultation": (prices.set_consultation_fee, "doctor_id", "price"),
    "lab": (catalog.set_lab_test_price, "test_id", "price"),
    "medicine": (inventory.set_medicine_price, "medicine_id", "unit_price"),
}
"""Each kind of price and the service of the role that owns it, which checks that role again."""


class PricesState(PagedTableMixin, SessionState):
    """Every price the hospital charges: change one, put a new service on the list, stop charging one."""

    rows: list[PriceRow] = []
    sort: str = "name"
    show: str = ""
    editing: PriceRow = _NO_PRICE
    adding: bool = False
    department_choices: list[tuple[str, str]] = []
    form_error: str = ""

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(
            prices.list_prices, write=False, search=self.search, show=self.show, sort=self.sort,
            descending=self.descending, page=self.page, page_size=self.page_size))

    @rx.event
    async def filter_prices(self, show: str):
        self.show = str(show) if str(show) in prices.PRICE_FILTERS else ""
        self.page = 1
        return await self._reload()

    @rx.event
    def open_price(self, kind: str, item_id: int):
        self.editing = next((r for r in self.rows if r.kind == kind and r.item_id == item_id), _NO_PRICE)
        self.form_error = ""

    @rx.event
    def close_price(self):
        self.editing, self.form_error = _NO_PRICE, ""

    @rx.event
    async def save_price(self, form_data: dict):
        row = self.editing
        if row.kind not in _PRICE_SAVERS:
            return None
        service, key, argument = _PRICE_SAVERS[row.kind]
        price = form_text(form_data, "price", 20)
        answer = await self._act(service, **{key: row.item_id, argument: price}, refresh=self._reload,
                                 success=_("Price of {name} saved. Charges already made keep their price.").format(
                                     name=row.name))
        self.form_error = answer.error
        if not answer.refused:
            self.editing = _NO_PRICE
        return answer

    @rx.event
    async def open_add(self):
        answer = await self._act(departments.list_departments, write=False, include_inactive=False)
        if answer.refused:
            return answer
        self.department_choices = [("", _("None")), *[(str(d.id), d.name) for d in answer.result]]
        self.adding, self.form_error = True, ""
        return None

    @rx.event
    def close_add(self):
        self.adding, self.form_error = False, ""

    @rx.event
    async def add_service(self, form_data: dict):
        form = ServicePriceForm(code=form_text(form_data, "code", 40), name=form_text(form_data, "name", 200),
                                price=form_text(form_data, "price", 20),
                                department_id=form_text(form_data, "department_id", 20))
        answer = await self._act(prices.add_service_price, form=form, refresh=self._reload,
                                 success=_("{name} added to the price list.").format(name=form.name.strip()))
        self.form_error = answer.error
        if not answer.refused:
            self.adding = False
        return answer

    @rx.event
    async def toggle_service(self, price_id: int, active: bool):
        return await self._act(prices.set_service_price_active, price_id=price_id, active=bool(active),
                               refresh=self._reload,
                               success=_("Service charged again.") if active else _("Service no longer charged."))
