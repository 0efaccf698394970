"""The doctor's view of one patient's record."""

from __future__ import annotations

import reflex as rx

from hms_app.services import charts
from hms_app.services.charts import PatientRecord
from hms_app.services.errors import HMSError
from hms_app.state.auth import SessionState

_EMPTY = PatientRecord(0, "", "", "", "", "", "", "", "", "", [])


class PatientRecordState(SessionState):
    record: PatientRecord = _EMPTY
    missing: bool = False

    @rx.event
    async def open_record(self):
        patient_id = self.router.url.query_parameters.get("id", "")
        try:
            self.record = await self._call(charts.open_patient_record, patient_id=patient_id)
        except HMSError as error:
            self.record = _EMPTY
            self.missing = True
            return await self._failure(error)
        self.missing = False
        return None
