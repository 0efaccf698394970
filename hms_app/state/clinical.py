"""The doctor's chart and encounter, and the patient's own history."""

from __future__ import annotations

import reflex as rx

from hms_app.components.figures import Figure, blank_figure, vitals_figure
from hms_app.services.care import clinical, documents, prescribing
from hms_app.services.care.clinical import (
    BreakGlassRequired,
    Chart,
    DiagnosisOption,
    EncounterForm,
    EncounterView,
    TimelineEntry,
)
from hms_app.services.care.prescribing import (
    DuplicateOrder,
    ItemForm,
    LabTestOption,
    MedicineOption,
    OrderedItem,
    SafetyWarning,
)
from hms_app.services.core import receipts
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.reference import icd10
from hms_app.state.auth import SessionState, file_download
from hms_app.state.forms import form_text
from hms_app.state.tables import PagedTableMixin

_NO_CHART = Chart(0, "", "", "", "", "", "", "", "", "", [], [], [], False)
_NO_ENCOUNTER = EncounterView(*([0, 0, 0] + [""] * 19), [], [])
SAFETY_CHECK = N_("Safety check: read the warnings. To prescribe anyway, give a reason.")




async def upload_bytes(files: list[rx.UploadFile], *, limit: int = 0) -> tuple[str, bytes]:
    """The one uploaded file's name and bytes, reading at most one byte past the limit
    (``settings.MAX_UPLOAD_BYTES`` unless given)."""
    from hms_app import settings

    if not isinstance(files, list) or len(files) != 1:
        return "", b""
    upload = files[0]
    data = await upload.read((limit or settings.MAX_UPLOAD_BYTES) + 1) if hasattr(upload, "read") else b""
    return str(getattr(upload, "name", "") or getattr(upload, "filename", "") or ""), data


class ChartState(PagedTableMixin, SessionState):
    """One patient's chart: header, vitals trend, allergies, problems, paged timeline, documents."""

    chart: Chart = _NO_CHART
    rows: list[TimelineEntry] = []
    page_size: int = 15
    vitals: Figure = blank_figure()
    patient_id: str = ""
    needs_break_glass: bool = False
    missing: bool = False

    async def _fetch(self) -> None:
        result = await self._call(clinical.chart_timeline, patient_id=self.patient_id, page=self.page,
                                  page_size=self.page_size)
        self.rows = self._paged(result)

    async def _load_chart(self):
        answer = await self._act(clinical.open_chart, patient_id=self.patient_id)
        if isinstance(answer.refusal, BreakGlassRequired):
            self.chart, self.needs_break_glass, self.missing = _NO_CHART, True, False
            return rx.toast.warning(answer.error)
        if answer.refused:
            self.chart, self.needs_break_glass, self.missing = _NO_CHART, False, True
            return answer
        self.chart = answer.result
        self.needs_break_glass = self.missing = False
        self.vitals = vitals_figure(self.chart.vitals)
        return await self._reload()

    @rx.event
    async def open_chart(self):
        self.patient_id = str(self.router.url.query_parameters.get("id", ""))[:12]
        self.page = 1
        return await self._load_chart()

    @rx.event
    async def break_glass(self, form_data: dict):
        return await self._act(
            clinical.break_glass, patient_id=self.patient_id, reason=form_text(form_data, "reason"),
            refresh=self._load_chart,
            success=lambda _result: rx.toast.warning(
                _("Chart opened by breaking the glass. This is recorded and reviewed.")))

    async def _change(self, service, success: str, **kwargs):
        return await self._act(service, refresh=self._load_chart, success=success, **kwargs)

    @rx.event
    async def add_allergy(self, form_data: dict):
        return await self._change(clinical.add_allergy, _("Allergy recorded."), patient_id=self.patient_id,
                                  substance=form_text(form_data, "substance", 120), reaction=form_text(form_data, "reaction"),
                                  severity=form_text(form_data, "severity", 10))

    @rx.event
    async def resolve_allergy(self, allergy_id: int):
        return await self._change(clinical.resolve_allergy, _("Allergy marked as resolved."), allergy_id=allergy_id)

    @rx.event
    async def add_problem(self, form_data: dict):
        return await self._change(clinical.add_problem, _("Problem added to the list."), patient_id=self.patient_id,
                                  description=form_text(form_data, "description", 300),
                                  icd10_code=form_text(form_data, "icd10_code", 10))

    @rx.event
    async def resolve_problem(self, problem_id: int):
        return await self._change(clinical.resolve_problem, _("Problem resolved."), problem_id=problem_id)

    @rx.event
    async def upload_document(self, files: list[rx.UploadFile]):
        name, data = await upload_bytes(files)
        title = name.rsplit(".", 1)[0][:120] if name else ""
        return await self._act(documents.upload_document, patient_id=self.patient_id, title=title, file_name=name,
                               data=data, refresh=self._reload, success=_("Document added to the record."))

    @rx.event
    async def download_document(self, document_id: int):
        return await self._act(documents.download_document, document_id=document_id, success=file_download)


class EncounterState(SessionState):
    """The encounter of one appointment: notes, diagnosis, vitals, prescriptions, lab orders."""

    encounter: EncounterView = _NO_ENCOUNTER
    orders: list[OrderedItem] = []
    medicines: list[MedicineOption] = []
    lab_tests: list[LabTestOption] = []
    chosen_tests: list[str] = []
    warnings: list[str] = []
    """The safety warnings of the prescription's items as they now stand; signing overrides exactly these."""
    duplicate_orders: list[str] = []
    """The chosen tests the patient already has open; ordering the same tests again confirms them."""
    _duplicates_of: list[str] = []
    icd10_code: str = ""
    icd10_label: str = ""
    icd10_term: str = ""
    icd10_options: list[DiagnosisOption] = []
    missing: bool = False
    prescribe_key: str = ""
    order_key: str = ""
    """The keys the prescribing and ordering forms carry (``receipts``): a double click signs or
    orders once."""

    async def _refresh_orders(self) -> None:
        self.orders = await self._call(prescribing.encounter_orders, write=False, encounter_id=self.encounter.id)

    def _show_encounter(self, encounter: EncounterView) -> None:
        self.encounter = encounter
        self.icd10_code, self.icd10_label = encounter.icd10_code, encounter.icd10_label

    async def _fetch(self, appointment_id: str) -> None:
        self._show_encounter(await self._call(clinical.open_encounter, appointment_id=appointment_id))
        self.medicines = await self._call(prescribing.formulary, write=False)
        self.lab_tests = await self._call(prescribing.lab_catalog, write=False)
        await self._refresh_orders()

    @rx.event
    async def open_encounter(self):
        appointment_id = str(self.router.url.query_parameters.get("appointment", ""))[:12]
        self.warnings, self.chosen_tests, self.duplicate_orders, self._duplicates_of = [], [], [], []
        self.icd10_term, self.icd10_options = "", []
        self.prescribe_key, self.order_key = receipts.new_request_key(), receipts.new_request_key()
        answer = await self._act(self._fetch(appointment_id))
        self.missing = answer.refused
        if answer.refused:
            self._show_encounter(_NO_ENCOUNTER)
        else:
            icd10.warm_up()  # the diagnosis search's index, before the doctor types
        return answer

    @rx.event
    async def save_notes(self, form_data: dict):
        form = EncounterForm(
            subjective=form_text(form_data, "subjective", 20_000), objective=form_text(form_data, "objective", 20_000),
            assessment=form_text(form_data, "assessment", 20_000), plan=form_text(form_data, "plan", 20_000),
            diagnosis=form_text(form_data, "diagnosis", 400), icd10_code=str(self.icd10_code)[:12],
            vitals={k: form_text(form_data, k, 20) for k in clinical.VITAL_RANGES},
        )
        answer = await self._act(clinical.save_encounter, encounter_id=self.encounter.id, form=form,
                                 success=_("Notes and vitals saved."))
        if not answer.refused:
            self._show_encounter(answer.result)
        return answer

    @rx.event
    async def search_icd10(self, term: str):
        self.icd10_term = str(term)[:100]
        if not self.icd10_term.strip():
            self.icd10_options = []
            return None
        answer = await self._act(clinical.search_diagnoses, write=False, term=self.icd10_term)
        self.icd10_options = [] if answer.refused else answer.result
        return None if not answer.refused else answer

    @rx.event
    def pick_icd10(self, code: str):
        for option in self.icd10_options:
            if option.code == code:
                self.icd10_code, self.icd10_label = option.code, option.label
                self.icd10_options, self.icd10_term = [], ""
                return rx.toast.info(_("ICD-10 {code} chosen; save the notes to keep it.").format(code=option.code))
        return rx.toast.error(_("Choose a code from the list of matches."))

    @rx.event
    def clear_icd10(self):
        self.icd10_code = self.icd10_label = ""
        return rx.toast.info(_("ICD-10 code removed; the diagnosis stays as free text once saved."))

    @rx.event
    async def check_medicine(self, medicine_id: str):
        """Check the prescription's item again whenever its medicine changes."""
        medicine_id = str(medicine_id)[:12]
        if not medicine_id:
            self.warnings = []
            return None
        answer = await self._act(prescribing.check_medicines, write=False, encounter_id=self.encounter.id,
                                 medicine_ids=[medicine_id])
        self.warnings = [] if answer.refused else answer.result
        if answer.refused:
            return answer
        if self.warnings:
            return rx.toast.warning(_(SAFETY_CHECK))
        return None

    @rx.event
    async def prescribe(self, form_data: dict):
        await self._hold_submits()
        yield
        item = ItemForm(
            medicine_id=form_text(form_data, "medicine_id", 12), dose=form_text(form_data, "dose", 80),
            route=form_text(form_data, "route", 30), frequency=form_text(form_data, "frequency", 40),
            days=form_text(form_data, "days", 6), quantity=form_text(form_data, "quantity", 8),
            instructions=form_text(form_data, "instructions"),
        )
        answer = await self._act(prescribing.prescribe, encounter_id=self.encounter.id, items=[item],
                                 override_reason=form_text(form_data, "override_reason") if self.warnings else "",
                                 acknowledged_warnings=list(self.warnings), refresh=self._refresh_orders,
                                 request_key=form_text(form_data, "request_key", 64),
                                 success=_("Prescription signed and sent to the pharmacy."))
        if isinstance(answer.refusal, SafetyWarning):
            self.warnings = answer.refusal.warnings
            if not self.warnings:
                yield rx.toast.warning(answer.refusal.message)
                return
            yield rx.toast.warning(_(SAFETY_CHECK))
            return
        if not answer.refused:
            self.warnings = []
            self.prescribe_key = receipts.new_request_key()
        yield answer

    @rx.event
    def clear_warnings(self):
        self.warnings = []

    @rx.event
    def toggle_test(self, test_id: str, chosen: bool):
        test_id = str(test_id)[:12]
        if chosen and test_id not in self.chosen_tests:
            self.chosen_tests = [*self.chosen_tests, test_id]
        elif not chosen:
            self.chosen_tests = [t for t in self.chosen_tests if t != test_id]
        self.duplicate_orders, self._duplicates_of = [], []

    @rx.event
    async def order_tests(self, form_data: dict):
        await self._hold_submits()
        yield
        confirmed = bool(self._duplicates_of) and sorted(self._duplicates_of) == sorted(self.chosen_tests)
        answer = await self._act(prescribing.order_lab_tests, encounter_id=self.encounter.id,
                                 test_ids=self.chosen_tests, priority=form_text(form_data, "priority", 10),
                                 note=form_text(form_data, "note"), confirm_duplicate=confirmed,
                                 refresh=self._refresh_orders, request_key=form_text(form_data, "request_key", 64),
                                 success=ngettext(
                                     # The same text for one test and several: the e2e tests read it.
                                     "{n} test(s) ordered; the lab sees them now.",
                                     "{n} test(s) ordered; the lab sees them now.",
                                     len(self.chosen_tests)).format(n=len(self.chosen_tests)))
        if isinstance(answer.refusal, DuplicateOrder):
            self.duplicate_orders, self._duplicates_of = answer.refusal.open_orders, list(self.chosen_tests)
            yield rx.toast.warning(_("Already open: confirm to order again, or untick the test."))
            return
        self.duplicate_orders, self._duplicates_of = [], []
        if not answer.refused:
            self.chosen_tests = []
            self.order_key = receipts.new_request_key()
        yield answer

    @rx.event
    async def complete(self):
        return await self._act(clinical.complete_encounter, encounter_id=self.encounter.id, success=lambda _result: [
            rx.redirect("/doctor/appointments"), rx.toast.success(_("Encounter completed; the appointment is closed."))])


class PatientHistoryState(PagedTableMixin, SessionState):
    """The patient's own history, read-only."""

    rows: list[TimelineEntry] = []
    allergies: list[clinical.AllergyRow] = []

    async def _fetch(self) -> None:
        result = await self._call(clinical.my_history, page=self.page, page_size=self.page_size)
        self.rows = self._paged(result)
        self.allergies = await self._call(clinical.my_allergies, write=False)

    @rx.event
    async def download_document(self, document_id: int):
        return await self._act(documents.download_document, document_id=document_id, success=file_download)
