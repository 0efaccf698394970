"""The lab's worklist, and lab results as the patient and the ordering doctor see them."""

from __future__ import annotations

import dataclasses

import reflex as rx

from hms_app.services.core.language import _
from hms_app.services.laboratory import lab
from hms_app.services.laboratory.lab import LabTestChoice, ResultView, WorklistRow
from hms_app.state.auth import SessionState, file_download
from hms_app.state.clinical import upload_bytes
from hms_app.state.forms import form_text
from hms_app.state.tables import PagedTableMixin


class LabWorklistState(PagedTableMixin, SessionState):
    """The lab's worklist with filters, the moves of an order, results and report files."""

    rows: list[WorklistRow] = []
    page_size: int = 25
    tests: list[LabTestChoice] = []
    filter_status: str = ""
    filter_priority: str = ""
    filter_test: str = ""
    filter_show: str = "open"
    filter_from: str = ""
    filter_to: str = ""
    working_id: int = 0
    working: WorklistRow = WorklistRow(0, "", "", "", "", "", "", "", "", "", "", "")
    cancelling: bool = False
    cancel_reason: str = ""
    """The reason typed, waiting for the explicit "Yes, cancel" (empty: not asked yet)."""
    last_flag: str = ""

    async def _fetch(self) -> None:
        if not self.tests:
            self.tests = await self._call(lab.worklist_tests, write=False)
        self.rows = self._paged(await self._call(
            lab.worklist, write=False, status=self.filter_status, priority=self.filter_priority,
            test_id=self.filter_test or None, show=self.filter_show, date_from=self.filter_from,
            date_to=self.filter_to, page=self.page, page_size=self.page_size))
        if self.working_id:
            self.working = next((r for r in self.rows if r.id == self.working_id), self.working)

    @rx.event
    async def apply_filters(self, form_data: dict):
        self.filter_status = form_text(form_data, "status", 20)
        self.filter_priority = form_text(form_data, "priority", 10)
        self.filter_test = form_text(form_data, "test", 12)
        self.filter_show = form_text(form_data, "show", 12) or "open"
        self.filter_from = form_text(form_data, "from", 10)
        self.filter_to = form_text(form_data, "to", 10)
        self.page = 1
        return await self._reload()

    async def _move(self, service, success: str, **kwargs):
        """One move of an order; the worklist is shown afresh either way."""
        return await self._act(service, refresh=self._reload, on_refusal=self._reload, success=success, **kwargs)

    @rx.event
    async def collect(self, order_id: int):
        return await self._move(lab.collect_sample, _("Sample collected."), order_id=order_id)

    @rx.event
    async def start(self, order_id: int):
        return await self._move(lab.start_test, _("Test started."), order_id=order_id)

    @rx.event
    def open_work(self, order_id: int):
        row = next((r for r in self.rows if r.id == order_id), None)
        if row is not None:
            self.working_id, self.working, self.last_flag = row.id, row, ""
            self.cancelling, self.cancel_reason = False, ""

    @rx.event
    def ask_cancel(self):
        self.cancelling, self.cancel_reason = True, ""

    @rx.event
    def close_work(self):
        self.working_id, self.cancelling, self.cancel_reason = 0, False, ""

    @rx.event
    def review_cancel(self, form_data: dict):
        """The reason is typed: show what will be cancelled and ask for an explicit yes."""
        reason = form_text(form_data, "reason", 300).strip()
        if len(reason) < 3:
            return rx.toast.error(_("Say why the order is cancelled (for example: sample haemolysed)."))
        self.cancel_reason = reason
        return None

    @rx.event
    def keep_order(self):
        self.cancelling, self.cancel_reason = False, ""

    @rx.event
    async def cancel(self):
        """Cancel the order in the dialog, once its reason was given and the cancellation confirmed."""
        if not (self.working_id and self.cancel_reason):
            return rx.toast.error(_("Give a reason and confirm before cancelling the order."))
        outcome = await self._move(lab.cancel_order, _("Order cancelled; the doctor is told why."),
                                   order_id=self.working_id, reason=self.cancel_reason)
        self.cancelling, self.cancel_reason = False, ""
        if self.working_id and not any(r.id == self.working_id and r.status_value != "cancelled" for r in self.rows):
            self.working_id = 0
        return outcome

    @rx.event
    async def enter_result(self, form_data: dict):
        answer = await self._act(lab.enter_result, order_id=self.working_id, value=form_text(form_data, "value", 200),
                                 comment=form_text(form_data, "comment"))
        if answer.refused:
            return answer
        entered = answer.result
        self.last_flag = entered.flag_label
        self.working = dataclasses.replace(self.working, status_value="completed", status="completed")
        await self._reload()
        if entered.is_critical:
            return rx.toast.warning(_("Critical value ({flag}): the ordering doctor has been alerted.").format(
                flag=entered.flag_label))
        flag = entered.flag_label or _("text result")
        if not entered.released:
            return rx.toast.success(_("Result saved ({flag}); held for the ordering doctor's review before the "
                                      "patient sees it.").format(flag=flag))
        return rx.toast.success(_("Result saved ({flag}); patient and doctor notified.").format(flag=flag))

    @rx.event
    async def upload_report(self, files: list[rx.UploadFile]):
        name, data = await upload_bytes(files)
        return await self._move(lab.upload_report_file, _("Report file attached."), order_id=self.working_id,
                                file_name=name, data=data)


class LabResultsState(PagedTableMixin, SessionState):
    """Results as the patient (their own) or the ordering doctor (critical ones first, then those
    held for review) sees them; the doctor marks held ones reviewed, which releases them."""

    rows: list[ResultView] = []
    reviewing_id: int = 0
    reviewing_title: str = ""

    async def _fetch(self) -> None:
        actor = await self._actor(refused_action="lab.results")
        service = lab.results_for_patient if actor.role == "patient" else lab.results_for_doctor
        self.rows = self._paged(await self._call(service, page=self.page, page_size=self.page_size))

    @rx.event
    async def acknowledge(self, result_id: int):
        return await self._act(lab.acknowledge_critical, result_id=result_id, refresh=self._reload,
                               success=_("Critical result acknowledged."))

    @rx.event
    async def download(self, order_id: int, which: str):
        return await self._act(lab.download_result_file, order_id=order_id, which=str(which)[:10],
                               success=file_download)

    @rx.event
    def open_review(self, result_id: int):
        row = next((r for r in self.rows if r.result_id == result_id and r.can_review), None)
        if row is not None:
            self.reviewing_id = row.result_id
            self.reviewing_title = _("{test} for {patient}: {value} {unit}").format(
                test=row.test, patient=row.patient, value=row.value, unit=row.unit).strip()

    @rx.event
    def close_review(self):
        self.reviewing_id, self.reviewing_title = 0, ""

    @rx.event
    async def review(self, form_data: dict):
        """Mark the result in the dialog reviewed, with the optional note: the patient sees it now."""
        answer = await self._act(lab.review_result, result_id=self.reviewing_id,
                                 note=form_text(form_data, "note", lab.MAX_REVIEW_NOTE + 1),
                                 refresh=self._reload, on_refusal=self._reload,
                                 success=_("Reviewed: the patient can see the result now and has been told."))
        if not answer.refused or not any(r.result_id == self.reviewing_id and r.can_review for r in self.rows):
            self.reviewing_id, self.reviewing_title = 0, ""
        return answer
