"""Builds the Reflex app: theme, pages with their guards, and the few HTTP routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import reflex as rx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hms_app import account_routes, event_limits, fhir_routes, session_cookie, settings
from hms_app.components.i18n import document, t
from hms_app.db.engine import get_engine, session_scope
from hms_app.http_headers import with_address_check, with_security_headers
from hms_app.pages import (
    admin,
    appointments,
    auth,
    billing,
    catalog,
    clinical,
    common,
    dashboards,
    finance,
    imports,
    interop,
    lab,
    patients,
    pharmacy,
    reports,
)
from hms_app.services.administration.hospital import load_hospital_settings
from hms_app.services.core import events
from hms_app.services.core.language import _
from hms_app.services.messaging import mail
from hms_app.state import live
from hms_app.state.admin import (
    AdminDashboardState,
    AdminUsersState,
    AuditState,
    BreakGlassState,
    DepartmentsState,
    PermissionsState,
)
from hms_app.state.appointments import (
    AdminAppointmentsState,
    BookingState,
    DoctorAppointmentsState,
    PatientAppointmentsState,
    ScheduleState,
)
from hms_app.state.auth import LanguageGate, LoginState, SessionState, TabGate
from hms_app.state.billing import AccountsInvoicesState, PatientInvoicesState
from hms_app.state.catalog import LabCatalogState, PricesState
from hms_app.state.clinical import (
    ChartState,
    EncounterState,
    PatientHistoryState,
)
from hms_app.state.dashboard import DoctorDeskState, LabDeskState, NotificationsState, ProfileState
from hms_app.state.finance import AccountsDashboardState
from hms_app.state.imports import ImportHistoryState, ImportState
from hms_app.state.interop import ApiClientsState
from hms_app.state.lab import LabResultsState, LabWorklistState
from hms_app.state.malformed import MalformedEventGate
from hms_app.state.patients import PatientSearchState
from hms_app.state.pharmacy import (
    InventoryState,
    PatientPrescriptionsState,
    PharmacyDashboardState,
    PharmacyQueueState,
    StockLedgerState,
)
from hms_app.state.reports import AdminReportsState
from hms_app.upload_gate import with_upload_gate

log = logging.getLogger("hms")

# The hospital's own name, time zone, locale and currency (`hms init`), read before any page
# compiles: the header shows the name, and every date and amount is written in them.
load_hospital_settings()


def _backend_error(exception: Exception):
    """Unexpected failures: logged on the server, a plain message in the UI, no traceback."""
    log.error("unhandled error in an event handler", exc_info=exception)
    return rx.toast.error(_("Something went wrong on our side and nothing was saved. Please try again."))


async def _health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def index() -> rx.Component:
    return rx.el.main(document(), rx.center(rx.spinner(size="3"), rx.text(t("Loading…")), min_height="100vh"))


app = rx.App(
    stylesheets=["/hms.css"],
    backend_exception_handler=_backend_error,
    # The health, session-cookie, FHIR and account routes; uploads checked before their body is
    # read; a plain page for a browser at an address the websocket refuses; then security headers
    # on every HTTP response (pages, assets, API).
    api_transformer=[Starlette(routes=[Route("/api/health", _health), session_cookie.route, fhir_routes.mount,
                                       account_routes.route]),
                     with_upload_gate, with_address_check, with_security_headers],
)
app.add_middleware(TabGate())
app.add_middleware(LanguageGate())
app.add_middleware(MalformedEventGate())
event_limits.install(app)

async def _bind_live_hub() -> None:
    """Let the live hub reach this worker's event loop from the threads that commit."""
    import asyncio

    live.hub.bind_loop(asyncio.get_running_loop())


app.register_lifespan_task(_bind_live_hub)


@contextlib.asynccontextmanager
async def _open_database():
    """Size this worker's database pool as it starts: on PostgreSQL the pool is fitted under the
    server's connection limit, and a worker that cannot fit stops here with the reason."""
    await asyncio.to_thread(get_engine)
    yield


app.register_lifespan_task(_open_database)


@contextlib.asynccontextmanager
async def _recover_imports():
    """Mark failed the imports a stopped server left running (their work was rolled back)."""
    from hms_app.db.types import utcnow
    from hms_app.services.golive import jobs

    started = utcnow()

    def recover() -> None:
        with session_scope() as session:
            jobs.recover_interrupted_imports(session, started_before=started)

    try:
        await asyncio.to_thread(recover)
    except Exception:
        log.exception("could not mark interrupted imports as failed")
    yield


app.register_lifespan_task(_recover_imports)


@contextlib.asynccontextmanager
async def _send_email():
    """Send the e-mail outbox from this worker every ``HMS_MAIL_INTERVAL`` seconds, when e-mail is
    on and ``HMS_MAIL_SENDER`` is ``app``: the outbox's claims keep several senders from sending
    a message twice. A round that fails is logged and the next one tries again."""
    if not mail.enabled() or settings.MAIL_SENDER != "app":
        yield
        return
    transport = mail.SmtpTransport(settings.SMTP_URL)

    async def rounds() -> None:
        while True:
            try:
                await asyncio.to_thread(mail.send_round, session_scope, transport)
            except Exception:
                log.exception("e-mail round failed; trying again in %s s", settings.MAIL_INTERVAL)
            await asyncio.sleep(settings.MAIL_INTERVAL)

    task = asyncio.create_task(rounds())
    try:
        yield
    finally:
        task.cancel()


app.register_lifespan_task(_send_email)
events.subscribe(live.hub.on_change)

app.add_page(index, route="/", title="HMS", on_load=LoginState.open_login)
app.add_page(auth.login_page, route="/login", title="Log in · HMS", on_load=LoginState.open_login)
app.add_page(auth.register_page, route="/register", title="Register · HMS")
app.add_page(auth.password_page, route="/account/password", title="Change password · HMS",
             on_load=SessionState.guard(""))
app.add_page(common.notifications_page, route="/notifications", title="Notifications · HMS",
             on_load=[SessionState.guard(""), NotificationsState.load_rows])

app.add_page(dashboards.patient_dashboard, route="/patient", title="My dashboard · HMS",
             on_load=[SessionState.guard("patient"), ProfileState.load_profile])
app.add_page(dashboards.doctor_dashboard, route="/doctor", title="Doctor · HMS",
             on_load=[SessionState.guard("doctor"), ProfileState.load_profile, DoctorDeskState.load_desk])
app.add_page(dashboards.lab_dashboard, route="/lab", title="Laboratory · HMS",
             on_load=[SessionState.guard("lab"), ProfileState.load_profile, LabDeskState.load_desk])

app.add_page(finance.accounts_dashboard, route="/accounts", title="Accounts · HMS",
             on_load=[SessionState.guard("accounts"), AccountsDashboardState.load_dashboard])
app.add_page(admin.admin_dashboard, route="/admin", title="Administration · HMS",
             on_load=[SessionState.guard("admin"), AdminDashboardState.load_figures])
app.add_page(admin.users_page, route="/admin/users", title="Users · HMS",
             on_load=[SessionState.guard("admin"), AdminUsersState.load_rows])
app.add_page(admin.departments_page, route="/admin/departments", title="Departments · HMS",
             on_load=[SessionState.guard("admin"), DepartmentsState.load_departments])
app.add_page(admin.permissions_page, route="/admin/permissions", title="Permissions · HMS",
             on_load=[SessionState.guard("admin"), PermissionsState.load_matrix])
app.add_page(admin.break_glass_page, route="/admin/break-glass", title="Break-glass review · HMS",
             on_load=[SessionState.guard("admin"), BreakGlassState.load_rows])
app.add_page(admin.audit_page, route="/admin/audit", title="Audit trail · HMS",
             on_load=[SessionState.guard("admin"), AuditState.load_rows])
app.add_page(imports.import_page, route="/admin/import", title="Import data · HMS",
             on_load=[SessionState.guard("admin"), ImportState.load_page, ImportHistoryState.load_rows])
app.add_page(interop.api_clients_page, route="/admin/api-clients", title="API clients · HMS",
             on_load=[SessionState.guard("admin"), ApiClientsState.load_clients])
app.add_page(reports.reports_page, route="/admin/reports", title="Reports · HMS",
             on_load=[SessionState.guard("admin"), AdminReportsState.load_reports])

app.add_page(appointments.booking_page, route="/patient/book", title="Book an appointment · HMS",
             on_load=[SessionState.guard("patient"), BookingState.open_booking])
app.add_page(appointments.patient_appointments_page, route="/patient/appointments", title="My appointments · HMS",
             on_load=[SessionState.guard("patient"), PatientAppointmentsState.load_appointments])
app.add_page(appointments.doctor_appointments_page, route="/doctor/appointments", title="Appointments · HMS",
             on_load=[SessionState.guard("doctor"), DoctorAppointmentsState.load_schedule])
app.add_page(appointments.doctor_schedule_page, route="/doctor/schedule", title="My schedule · HMS",
             on_load=[SessionState.guard("doctor"), ScheduleState.load_own_schedule])
app.add_page(appointments.admin_appointments_page, route="/admin/appointments", title="Appointments · HMS",
             on_load=[SessionState.guard("admin"), AdminAppointmentsState.load_rows])
app.add_page(appointments.admin_schedules_page, route="/admin/schedules", title="Schedules · HMS",
             on_load=[SessionState.guard("admin"), ScheduleState.load_any_schedule])
app.add_page(patients.patients_page, route="/doctor/patients", title="Patients · HMS",
             on_load=[SessionState.guard("doctor"), PatientSearchState.load_rows])
app.add_page(clinical.chart_page, route="/doctor/patient", title="Patient chart · HMS",
             on_load=[SessionState.guard("doctor"), ChartState.open_chart])
app.add_page(clinical.encounter_page, route="/doctor/encounter", title="Encounter · HMS",
             on_load=[SessionState.guard("doctor"), EncounterState.open_encounter])
app.add_page(clinical.patient_history_page, route="/patient/history", title="My health record · HMS",
             on_load=[SessionState.guard("patient"), PatientHistoryState.load_rows])
app.add_page(lab.lab_worklist_page, route="/lab/worklist", title="Lab worklist · HMS",
             on_load=[SessionState.guard("lab"), LabWorklistState.load_rows])
app.add_page(lab.results_page, route="/doctor/results", title="Lab results · HMS",
             on_load=[SessionState.guard("doctor"), LabResultsState.load_rows])
app.add_page(lab.results_page, route="/patient/results", title="My results · HMS",
             on_load=[SessionState.guard("patient"), LabResultsState.load_rows])
app.add_page(pharmacy.pharmacy_dashboard, route="/pharmacy", title="Pharmacy · HMS",
             on_load=[SessionState.guard("pharmacy"), PharmacyDashboardState.load_dashboard])
app.add_page(pharmacy.pharmacy_queue_page, route="/pharmacy/queue", title="Prescription queue · HMS",
             on_load=[SessionState.guard("pharmacy"), PharmacyQueueState.load_rows])
app.add_page(pharmacy.inventory_page, route="/pharmacy/stock", title="Stock · HMS",
             on_load=[SessionState.guard("", "inventory.manage"), InventoryState.load_rows])
app.add_page(catalog.lab_catalog_page, route="/lab/catalog", title="Lab catalog · HMS",
             on_load=[SessionState.guard("", "lab.catalog"), LabCatalogState.load_rows])
app.add_page(catalog.prices_page, route="/accounts/prices", title="Prices · HMS",
             on_load=[SessionState.guard("", "prices.manage"), PricesState.load_rows])
app.add_page(pharmacy.stock_ledger_page, route="/pharmacy/ledger", title="Stock ledger · HMS",
             on_load=[SessionState.guard("pharmacy"), StockLedgerState.load_rows])
app.add_page(billing.accounts_invoices_page, route="/accounts/invoices", title="Invoices · HMS",
             on_load=[SessionState.guard("accounts"), AccountsInvoicesState.load_rows])
app.add_page(billing.patient_invoices_page, route="/patient/invoices", title="My invoices · HMS",
             on_load=[SessionState.guard("patient"), PatientInvoicesState.load_rows])
app.add_page(pharmacy.patient_prescriptions_page, route="/patient/prescriptions", title="My prescriptions · HMS",
             on_load=[SessionState.guard("patient"), PatientPrescriptionsState.load_rows])

live.hub.watch("appointments", "/patient/appointments", PatientAppointmentsState, PatientAppointmentsState._load)
live.hub.watch("appointments", "/doctor/appointments", DoctorAppointmentsState, DoctorAppointmentsState._load)
live.hub.watch("imports", "/admin/import", ImportState, ImportState._reload)
live.hub.watch("imports", "/admin/import", ImportHistoryState, ImportHistoryState._reload)
live.hub.watch("appointments", "/admin/appointments", AdminAppointmentsState, AdminAppointmentsState._reload)
live.hub.watch("notifications", "/notifications", NotificationsState, NotificationsState._reload)
live.hub.watch("prescriptions", "/pharmacy/queue", PharmacyQueueState, PharmacyQueueState._reload)
live.hub.watch("prescriptions", "/pharmacy", PharmacyDashboardState, PharmacyDashboardState._load)
live.hub.watch("prescriptions", "/patient/prescriptions", PatientPrescriptionsState, PatientPrescriptionsState._reload)
live.hub.watch("billing", "/accounts", AccountsDashboardState, AccountsDashboardState._load)
live.hub.watch("billing", "/accounts/invoices", AccountsInvoicesState, AccountsInvoicesState._reload)
live.hub.watch("billing", "/patient/invoices", PatientInvoicesState, PatientInvoicesState._reload)
live.hub.watch("stock", "/pharmacy", PharmacyDashboardState, PharmacyDashboardState._load)
live.hub.watch("stock", "/pharmacy/stock", InventoryState, InventoryState._reload)
live.hub.watch("stock", "/pharmacy/ledger", StockLedgerState, StockLedgerState._reload)
live.hub.watch("stock", "/pharmacy/queue", PharmacyQueueState, PharmacyQueueState._reload)
live.hub.watch("lab", "/lab/worklist", LabWorklistState, LabWorklistState._reload)
live.hub.watch("lab", "/doctor/results", LabResultsState, LabResultsState._reload)
live.hub.watch("lab", "/patient/results", LabResultsState, LabResultsState._reload)
live.hub.watch("appointments", "/doctor", DoctorDeskState, DoctorDeskState._load)
live.hub.watch("lab", "/doctor", DoctorDeskState, DoctorDeskState._load)
live.hub.watch("lab", "/lab", LabDeskState, LabDeskState._load)
live.hub.watch("appointments", "/patient/history", PatientHistoryState, PatientHistoryState._reload)
live.hub.check(app)
