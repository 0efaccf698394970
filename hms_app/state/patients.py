"""The doctor's Patients page: find a patient by name, MRN or birth date."""

from __future__ import annotations

from hms_app.services.care import patient_search
from hms_app.services.care.patient_search import PatientMatch
from hms_app.state.auth import SessionState
from hms_app.state.tables import PagedTableMixin


class PatientSearchState(PagedTableMixin, SessionState):
    """One page of matches; the search itself, the paging and the sorting happen in SQL."""

    rows: list[PatientMatch] = []
    sort: str = "name"

    async def _fetch(self) -> None:
        result = await self._call(patient_search.search_patients, search=self.search, page=self.page,
                                  page_size=self.page_size, sort=self.sort, descending=self.descending)
        self.rows = self._paged(result)
