"""The admin's import page: choose a kind, upload, preview and map, check, import, follow, report.

The uploaded file is stored encrypted at once by the services (``jobs.receive_import_file``);
this state keeps only its id, in a backend var, and the preview rows it shows. The check and the
import name the upload by that id, so another worker or a restarted one finds the file. The
report of a job is paged from SQL.
"""

from __future__ import annotations

import reflex as rx

from hms_app.services.core.errors import NotFound
from hms_app.services.core.language import _
from hms_app.services.golive import csv_import, jobs
from hms_app.services.golive.jobs import ImportView, ReportLine
from hms_app.state.auth import SessionState
from hms_app.state.clinical import upload_bytes
from hms_app.state.tables import PagedTableMixin

_NO_JOB = ImportView(0, "", "", "", "", "", "", False, 0, 0, 0, "", 0, 0, 0, 0, 0, False, "", "", "")


class ImportState(PagedTableMixin, SessionState):
    """The import page; ``rows`` are the current job's report lines, a page at a time."""

    kinds: list[list[str]] = []
    kind: str = "patients"
    file_name: str = ""
    headers: list[str] = []
    mapping_rows: list[list[str]] = []
    column_options: list[list[str]] = []
    preview_rows: list[list[str]] = []
    preview_lines: int = 0
    problem: str = ""
    mode: str = "all"
    job: ImportView = _NO_JOB
    rows: list[ReportLine] = []
    outcome_filter: str = ""
    _upload_id: int = 0

    async def _fetch(self) -> None:
        if self.job.id:
            self.job = await self._call(jobs.import_status, write=False, job_id=self.job.id)
            self.rows = self._paged(await self._call(
                jobs.import_report, write=False, job_id=self.job.id, page=self.page, page_size=self.page_size,
                search=self.search, outcome=self.outcome_filter))

    @rx.event
    async def load_page(self):
        self.kinds = [[name, label] for name, label in jobs.kind_choices()]
        self._columns()
        return await self._reload()

    def _columns(self) -> None:
        kind = csv_import.csv_kinds().get(self.kind)
        self.column_options = [["", _("Ignore this column")]] + (
            [[c.name, _("{column} (required)").format(column=c.name) if c.required else c.name] for c in kind.columns]
            if kind else [])

    @rx.event
    async def choose_kind(self, kind: str):
        self.kind = str(kind)[:20]
        self._columns()
        if self._upload_id:
            # The file was for the other kind: it goes, and so does its preview.
            answer = await self._act(jobs.discard_upload, upload_id=self._upload_id)
            self._forget_upload()
            return answer
        return None

    def _forget_upload(self) -> None:
        self._upload_id = 0
        self.file_name, self.headers, self.mapping_rows, self.preview_rows, self.problem = "", [], [], [], ""
        self.preview_lines = 0

    @rx.event
    def download_template(self):
        kind = csv_import.csv_kinds().get(self.kind)
        if kind is None:
            return rx.toast.info(_("A FHIR file has no template: export the Bundle or NDJSON from the other system."))
        return [rx.download(data=csv_import.template_csv(kind), filename=f"{kind.name}-template.csv"),
                rx.toast.success(_("Template for {kind} downloaded: one example line under the header.").format(
                    kind=_(kind.label).lower()))]

    @rx.event
    def choose_mode(self, mode: str):
        self.mode = "good" if mode == "good" else "all"

    @rx.event
    async def upload_file(self, files: list[rx.UploadFile]):
        name, data = await upload_bytes(files, limit=csv_import.MAX_IMPORT_BYTES)
        answer = await self._act(jobs.receive_import_file, kind=self.kind, file_name=name, data=data,
                                 replacing=self._upload_id,
                                 success=_("File read: check the columns and the first lines below."))
        if not answer.refused:
            self._upload_id = answer.result.id
            self.file_name = answer.result.file_name
            self._show(answer.result.preview)
        return answer

    def _show(self, preview: csv_import.Preview) -> None:
        self.headers = preview.headers
        self.mapping_rows = [[h, preview.mapping.get(h, "")] for h in preview.headers]
        self.preview_rows = preview.rows
        self.preview_lines = preview.lines
        self.problem = preview.problem

    def _mapping(self) -> dict[str, str]:
        return dict(self.mapping_rows)

    @rx.event
    async def map_column(self, header: str, column: str):
        wanted = {**self._mapping(), str(header)[:200]: str(column)[:40]}
        answer = await self._act(jobs.preview_upload, write=False, upload_id=self._upload_id, mapping=wanted)
        self._after(answer)
        if not answer.refused:
            self._show(answer.result)
        return answer

    def _after(self, answer) -> None:
        """An upload the services no longer keep (imported in another tab, left for a day) leaves the page."""
        if isinstance(answer.refusal, NotFound):
            self._forget_upload()

    async def _start(self, *, dry_run: bool, success: str):
        answer = await self._act(jobs.start_import, upload_id=self._upload_id,
                                 mapping=self._mapping() if self.headers else None, dry_run=dry_run,
                                 good_rows_only=self.mode == "good", success=success)
        self._after(answer)
        if not answer.refused:
            if not dry_run:
                self._forget_upload()
            actor = await self._actor()
            jobs.launch_import(answer.result, actor)
            self.job = _NO_JOB.__class__(**{**_NO_JOB.__dict__, "id": answer.result, "running": True})
            self.page, self.outcome_filter = 1, ""
            await self._fetch()
        return answer

    @rx.event
    async def check_file(self):
        return await self._start(dry_run=True, success=_("Checking every line; nothing is imported."))

    @rx.event
    async def import_file(self):
        return await self._start(dry_run=False, success=_("Import started."))

    @rx.event
    async def cancel(self):
        return await self._act(jobs.cancel_import, job_id=self.job.id, refresh=self._reload,
                               success=_("Import cancelled; what it had not committed was rolled back."))

    @rx.event
    async def follow(self, _value: object = None):
        """The moment's tick while a job runs: fetch its progress (and, once it ends, its report)."""
        if self.job.id and self.job.running:
            return await self._reload()
        return None

    @rx.event
    async def show_job(self, job_id: int):
        self.job = _NO_JOB.__class__(**{**_NO_JOB.__dict__, "id": job_id})
        self.page, self.outcome_filter = 1, ""
        answer = await self._reload()
        if answer.refused:
            self.job = _NO_JOB
        return answer

    @rx.event
    async def filter_outcome(self, outcome: str):
        self.outcome_filter = "" if outcome == "all" else str(outcome)[:10]
        self.page = 1
        return await self._reload()


class ImportHistoryState(PagedTableMixin, SessionState):
    """The past imports on the import page, newest first, a page at a time."""

    rows: list[ImportView] = []
    page_size: int = 10

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(jobs.list_imports, write=False, page=self.page,
                                                 page_size=self.page_size, search=self.search))
