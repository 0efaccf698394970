"""Every service driven with hostile input (hypothesis): only the project's own errors come out,
and a refused call leaves the database as it was.

A Reflex client can send any JSON to any event handler, and the handlers pass what they get
to one service. So every public service (``verb_noun(*, session, actor, ...)`` in
``hms_app/services``) is called here with generated keyword arguments — integers huge and
negative, floats with NaN and infinity, text with NUL, lone surrogates, control characters,
SQL and HTML, very long text, None, lists, dicts, bytes — mixed with plausible values (ids of
real rows, dates, amounts, choices from the lists) so that the validation deep inside each
service is reached too. Each service runs as a role that holds its permission and as the same
user with every permission taken away.

What must hold for every call:

- it returns, or raises a subclass of ``HMSError`` (never ``TypeError``, ``ValueError``,
  ``OverflowError``, ``UnicodeEncodeError``, SQLAlchemy's ``IntegrityError``/``DataError``...);
- when it raised, every table (row count and a checksum of every row) and the folder of stored
  files are as they were, and the audit trail gained only refusals (outcome ``denied``).

Refusals that are meant to leave a trace besides the audit row, and are allowed here:

- a failed login counts the failure on the account (``user.failed_logins``, ``locked_until``)
  and is audited with outcome ``failed``;
- a prescription refused for its safety warnings is audited (``prescription.warning``), so
  that the warning shown to the doctor is on record.

The database is a copy, per service, of one world built once: the demo hospital with its
billing history, plus encounters, prescriptions, lab orders in every state, a critical
result, a report file, a document, a waitlist entry and a future appointment request.

``HMS_HOSTILE_EXAMPLES`` sets the examples per service and role (default 20);
``HMS_HOSTILE_RANDOM=1`` draws new examples on every run instead of the fixed sequence.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import pkgutil
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import hms_app.services as services_package
from hms_app import settings
from hms_app.db import crypto
from hms_app.db import engine as db_engine
from hms_app.db.engine import session_scope
from hms_app.db.enums import (
    AppointmentStatus,
    AuditOutcome,
    ClaimStatus,
    InvoiceStatus,
    LabOrderStatus,
    LabPriority,
    PaymentMethod,
    Permission,
    PrescriptionStatus,
    Role,
    StockMovementKind,
)
from hms_app.db.models import (
    Allergy,
    Appointment,
    AuditEvent,
    Department,
    DoctorAvailability,
    DoctorLeave,
    DoctorProfile,
    Document,
    Encounter,
    ImportJob,
    Invoice,
    LabOrder,
    LabResult,
    LabTest,
    Medicine,
    Notification,
    PatientProfile,
    Prescription,
    PrescriptionItem,
    Problem,
    StockBatch,
    User,
    WaitlistEntry,
)
from hms_app.operations import demo
from hms_app.services.accounting import billing
from hms_app.services.accounting.prices import ServicePriceForm
from hms_app.services.administration.audit_trail import AuditFilter
from hms_app.services.administration.auth import Registration
from hms_app.services.administration.users import StaffForm
from hms_app.services.booking import appointments, scheduling
from hms_app.services.booking.appointments import AppointmentFilter
from hms_app.services.care import clinical, documents, prescribing
from hms_app.services.care.clinical import VITAL_RANGES, EncounterForm
from hms_app.services.care.prescribing import FREQUENCIES, ROUTES, ItemForm
from hms_app.services.core import audit, localtime
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import HMSError
from hms_app.services.golive import jobs
from hms_app.services.laboratory import lab
from hms_app.services.laboratory.catalog import LabTestForm
from hms_app.services.medicines import pharmacy
from hms_app.services.medicines.inventory import MedicineForm, ReceiveForm
from tests.conftest import DEMO_EMAIL, POSTGRES_URL, login_as
from tests.services.appointment_helpers import call, insert_appointment
from tests.services.clinical_helpers import jpeg_bytes, pdf_bytes, png_bytes
from tests.services.helpers import unthrottled

pytestmark = pytest.mark.db

EXAMPLES = int(os.environ.get("HMS_HOSTILE_EXAMPLES", "20"))
RANDOM = os.environ.get("HMS_HOSTILE_RANDOM") == "1"
VISITOR_IP = "198.51.100.23"

# --- the services -------------------------------------------------------------------------------

ANY_ROLE = tuple(Role)
VISITOR = "visitor"
"""Called by someone without a session (login, registration, resolving a token)."""

# Who holds the permission each service checks (and owns the world's records it touches).
# The refused call is the same user with every permission taken away.
ROLES: dict[str, tuple[Role, ...] | str] = {
    "api_clients.issue_api_client": (Role.ADMIN,),
    "api_clients.list_api_clients": (Role.ADMIN,),
    "api_clients.revoke_api_client": (Role.ADMIN,),
    "appointments.all_appointments": (Role.ADMIN,),
    "appointments.appointment_filter_options": (Role.ADMIN,),
    "appointments.book_appointment": (Role.PATIENT,),
    "appointments.booking_departments": (Role.PATIENT,),
    "appointments.booking_doctors": (Role.PATIENT,),
    "appointments.cancel_appointment": (Role.PATIENT, Role.DOCTOR),
    "appointments.complete_appointment": (Role.DOCTOR,),
    "appointments.confirm_appointment": (Role.DOCTOR,),
    "appointments.decline_appointment": (Role.DOCTOR,),
    "appointments.doctor_schedule": (Role.DOCTOR,),
    "appointments.free_slots": (Role.PATIENT,),
    "appointments.join_waitlist": (Role.PATIENT,),
    "appointments.leave_waitlist": (Role.PATIENT,),
    "appointments.mark_no_show": (Role.DOCTOR,),
    "appointments.my_waitlist": (Role.PATIENT,),
    "appointments.patient_appointments": (Role.PATIENT,),
    "appointments.pending_requests": (Role.DOCTOR,),
    "appointments.reschedule_appointment": (Role.PATIENT, Role.DOCTOR),
    "audit_trail.export_audit_csv": (Role.ADMIN,),
    "audit_trail.search_audit": (Role.ADMIN,),
    "audit_trail.verify_audit_chain": (Role.ADMIN,),
    "auth.change_password": ANY_ROLE,
    "auth.complete_login": VISITOR,
    "auth.confirm_email": VISITOR,
    "auth.confirm_enrolment": VISITOR,
    "auth.login": VISITOR,
    "auth.logout": ANY_ROLE,
    "auth.register_patient": VISITOR,
    "auth.resolve_session": VISITOR,
    "auth.lease_session": VISITOR,
    "auth.start_enrolment": VISITOR,
    "billing.apply_discount": (Role.ACCOUNTS,),
    "billing.invoice_detail": (Role.ACCOUNTS, Role.PATIENT),
    "billing.invoice_pdf": (Role.ACCOUNTS, Role.PATIENT),
    "billing.issue_invoice": (Role.ACCOUNTS,),
    "billing.list_invoices": (Role.ACCOUNTS,),
    "billing.move_claim": (Role.ACCOUNTS,),
    "billing.my_invoices": (Role.PATIENT,),
    "billing.pay_online": (Role.PATIENT,),
    "billing.record_payment": (Role.ACCOUNTS,),
    "billing.refund_payment": (Role.ACCOUNTS,),
    "billing.set_insurer_share": (Role.ACCOUNTS,),
    "billing.void_invoice": (Role.ACCOUNTS,),
    "clinical.add_allergy": (Role.DOCTOR,),
    "clinical.add_problem": (Role.DOCTOR,),
    "clinical.break_glass": (Role.DOCTOR,),
    "clinical.chart_timeline": (Role.DOCTOR,),
    "clinical.complete_encounter": (Role.DOCTOR,),
    "clinical.list_break_glass": (Role.ADMIN,),
    "clinical.my_allergies": (Role.PATIENT,),
    "clinical.my_history": (Role.PATIENT,),
    "clinical.open_chart": (Role.DOCTOR,),
    "clinical.open_encounter": (Role.DOCTOR,),
    "clinical.resolve_allergy": (Role.DOCTOR,),
    "clinical.resolve_problem": (Role.DOCTOR,),
    "clinical.save_encounter": (Role.DOCTOR,),
    "clinical.search_diagnoses": (Role.DOCTOR,),
    "dashboards.admin_figures": (Role.ADMIN,),
    "departments.create_department": (Role.ADMIN,),
    "jobs.cancel_import": (Role.ADMIN,),
    "jobs.discard_upload": (Role.ADMIN,),
    "jobs.import_report": (Role.ADMIN,),
    "jobs.import_status": (Role.ADMIN,),
    "jobs.list_imports": (Role.ADMIN,),
    "jobs.preview_upload": (Role.ADMIN,),
    "jobs.receive_import_file": (Role.ADMIN,),
    "jobs.start_import": (Role.ADMIN,),
    "departments.list_departments": ANY_ROLE,
    "departments.rename_department": (Role.ADMIN,),
    "departments.set_department_active": (Role.ADMIN,),
    "desks.doctor_desk": (Role.DOCTOR,),
    "desks.lab_desk": (Role.LAB,),
    "documents.download_document": (Role.DOCTOR, Role.PATIENT),
    "documents.upload_document": (Role.DOCTOR,),
    "finance.accounts_summary": (Role.ACCOUNTS,),
    "finance.export_accounts_csv": (Role.ACCOUNTS,),
    "fhir.export_my_record": (Role.PATIENT,),
    "hospital.setup_overview": (Role.ADMIN,),
    "inventory.add_medicine": (Role.PHARMACY,),
    "inventory.adjust_stock": (Role.PHARMACY,),
    "inventory.medicine_batches": (Role.PHARMACY,),
    "inventory.medicine_choices": (Role.PHARMACY,),
    "inventory.receive_stock": (Role.PHARMACY,),
    "inventory.stock_alerts": (Role.PHARMACY,),
    "inventory.stock_ledger": (Role.PHARMACY,),
    "inventory.stock_list": (Role.PHARMACY,),
    "inventory.update_medicine": (Role.PHARMACY,),
    "inventory.edit_medicine": (Role.PHARMACY,),
    "inventory.set_medicine_active": (Role.PHARMACY,),
    "inventory.set_medicine_price": (Role.PHARMACY,),
    "catalog.add_lab_test": (Role.LAB,),
    "catalog.list_lab_tests": (Role.LAB,),
    "catalog.set_lab_test_active": (Role.LAB,),
    "catalog.set_lab_test_price": (Role.LAB,),
    "catalog.update_lab_test": (Role.LAB,),
    "lab.acknowledge_critical": (Role.DOCTOR,),
    "lab.cancel_order": (Role.LAB,),
    "lab.collect_sample": (Role.LAB,),
    "lab.download_result_file": (Role.DOCTOR, Role.PATIENT),
    "lab.enter_result": (Role.LAB,),
    "lab.generate_report_pdf": (Role.LAB,),
    "lab.result_for_order": (Role.DOCTOR, Role.PATIENT, Role.LAB),
    "lab.results_for_doctor": (Role.DOCTOR,),
    "lab.results_for_patient": (Role.PATIENT,),
    "lab.results_to_review_count": (Role.DOCTOR,),
    "lab.review_result": (Role.DOCTOR,),
    "lab.start_test": (Role.LAB,),
    "lab.unacknowledged_critical_count": (Role.DOCTOR,),
    "lab.upload_report_file": (Role.LAB,),
    "lab.worklist": (Role.LAB,),
    "lab.worklist_tests": (Role.LAB,),
    "mail.choose_email_reminders": ANY_ROLE,
    "prices.add_service_price": (Role.ACCOUNTS,),
    "prices.list_prices": (Role.ACCOUNTS,),
    "prices.set_consultation_fee": (Role.ACCOUNTS,),
    "prices.set_service_price": (Role.ACCOUNTS,),
    "prices.set_service_price_active": (Role.ACCOUNTS,),
    "prices.update_service_price": (Role.ACCOUNTS,),
    "reference_kinds.import_lab_test": (Role.LAB,),
    "reference_kinds.import_medicine": (Role.PHARMACY,),
    "reference_kinds.import_price": (Role.ACCOUNTS,),
    "mail.mail_status": (Role.ADMIN,),
    "mail.my_email_reminders": ANY_ROLE,
    "notifications.list_notifications": ANY_ROLE,
    "notifications.mark_all_read": ANY_ROLE,
    "notifications.mark_read": ANY_ROLE,
    "notifications.unread_count": ANY_ROLE,
    "patient_search.search_patients": (Role.DOCTOR,),
    "permissions.grant_permission": (Role.ADMIN,),
    "permissions.permission_matrix": (Role.ADMIN,),
    "permissions.revoke_permission": (Role.ADMIN,),
    "pharmacy.dispense": (Role.PHARMACY,),
    "pharmacy.dispense_view": (Role.PHARMACY,),
    "pharmacy.my_prescriptions": (Role.PATIENT,),
    "pharmacy.prescription_queue": (Role.PHARMACY,),
    "pharmacy.queue_counts": (Role.PHARMACY,),
    "pharmacy.reject_prescription": (Role.PHARMACY,),
    "pharmacy.verify_prescription": (Role.PHARMACY,),
    "preferences.choose_language": ANY_ROLE,
    "prescribing.check_medicines": (Role.DOCTOR,),
    "prescribing.check_prescription": (Role.DOCTOR,),
    "prescribing.encounter_orders": (Role.DOCTOR,),
    "prescribing.formulary": (Role.DOCTOR,),
    "prescribing.lab_catalog": (Role.DOCTOR,),
    "prescribing.order_lab_tests": (Role.DOCTOR,),
    "prescribing.prescribe": (Role.DOCTOR,),
    "record_summary.my_record_pdf": (Role.PATIENT,),
    "reports.export_report_csv": (Role.ADMIN, Role.ACCOUNTS),
    "reports.hospital_reports": (Role.ADMIN,),
    "reports.report_appointments": (Role.ADMIN,),
    "reports.report_doctor_utilisation": (Role.ADMIN,),
    "reports.report_lab_turnaround": (Role.ADMIN,),
    "reports.report_new_patients": (Role.ADMIN,),
    "reports.report_pharmacy": (Role.ADMIN,),
    "second_factor.list_second_factor_requirements": (Role.ADMIN,),
    "second_factor.reset_second_factor": (Role.ADMIN,),
    "second_factor.set_second_factor_requirement": (Role.ADMIN,),
    "scheduling.add_hours": (Role.DOCTOR, Role.ADMIN),
    "scheduling.add_leave": (Role.DOCTOR, Role.ADMIN),
    "scheduling.get_schedule": (Role.DOCTOR, Role.ADMIN),
    "scheduling.remove_hours": (Role.DOCTOR, Role.ADMIN),
    "scheduling.remove_leave": (Role.DOCTOR, Role.ADMIN),
    "scheduling.set_slot_minutes": (Role.DOCTOR, Role.ADMIN),
    "users.create_staff_user": (Role.ADMIN,),
    "users.deactivate_user": (Role.ADMIN,),
    "users.get_own_profile": ANY_ROLE,
    "users.list_users": (Role.ADMIN,),
    "users.reactivate_user": (Role.ADMIN,),
    "users.reset_password": (Role.ADMIN,),
}

# The reference data holds no client-facing service.
_NOT_SERVICES = {"reference"}


def public_services() -> dict[str, Callable[..., Any]]:
    """Every public ``verb_noun(*, session, actor|visitor|token, ...)`` of ``hms_app.services``."""
    found: dict[str, Callable[..., Any]] = {}
    for info in pkgutil.walk_packages(services_package.__path__, prefix="hms_app.services."):
        if info.ispkg or info.name.split(".")[2] in _NOT_SERVICES:
            continue
        module = importlib.import_module(info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            parameters = inspect.signature(function).parameters
            session = parameters.get("session")
            if session is None or session.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue  # a helper taking the caller's session positionally, not a service
            if {"actor", "visitor", "token"} & set(parameters):
                found[f"{info.name.rsplit('.', 1)[1]}.{name}"] = function
    return found


SERVICES = public_services()


def test_every_public_service_is_driven_here():
    """A new service joins this test by getting an entry in ROLES."""
    assert sorted(SERVICES) == sorted(ROLES)


# --- hostile values -----------------------------------------------------------------------------

NASTY_TEXT = [
    "", " ", "\t\n", "\x00", "a\x00b", "Maria\x00 Garcia", "\ud800", "a\udfffb", "\x1b[31mred", "\x7f", "\u202e",
    "\ufeff", "\u200b", "💉🏥", "Ω≈ç√", "ａｂｃ", "١٢٣", "²", "-1", "0", "+1", "1e308", "1e999", "inf", "-inf", "nan",
    "NaN", "9" * 40, "1" * 5000, "0x10", "1_000", " 12 ", "٣", "１２", "12.345", ".5", "5.", "1,200", "null",
    "None", "true", "[]", "{}", "' OR '1'='1", "'; DROP TABLE \"user\"; --", "%", "_", "%_%", "\\", "\\%",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "=HYPERLINK(\"http://x\")", "../../etc/passwd",
    "2026-02-30", "2026-13-01", "0001-01-01", "9999-12-31", "24:00", "23:59:59.999", "09:00+05:00",
    "2026-12-01T09:00:00", "2026-12-01T09:00:00+99:00", "x" * 100_001,
]
HUGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -(10**30), 10**400]

hostile_text = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=30),
    st.text(st.characters(codec=None, categories=["Cc", "Cs", "Zs", "Nd", "Lo", "So"]), max_size=12),
)
hostile_int = st.one_of(st.sampled_from(HUGE_INTS), st.integers())
hostile_float = st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.0, 1e308, 5e-324, 0.5]),
                          st.floats())
scalar = st.one_of(st.none(), st.booleans(), hostile_int, hostile_float, hostile_text, st.binary(max_size=8))
# The values that broke services before, drawn often so that the fixed sequence meets them.
NOTORIOUS = ["\x00", "a\x00b", "\ud800", float("inf"), float("nan"), 10**400, 2**63, -1, 0, True, None, [], {}, [1],
             {"a": 1}, b"\x00", "x" * 100_001, "1e308", "' OR 1=1 --", "%"]
hostile = st.one_of(
    st.sampled_from(NOTORIOUS),
    scalar,
    st.lists(scalar, max_size=3),
    st.dictionaries(st.text(max_size=5), scalar, max_size=3),
    st.tuples(scalar),
)
number = st.one_of(hostile_int, hostile_float, hostile_int.map(str), hostile_float.map(str), hostile)


def choice(values: list[Any]) -> st.SearchStrategy:
    """One of the values a form offers, or anything at all."""
    return st.one_of(st.sampled_from(values), hostile)


def plausible_text(*samples: str) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(list(samples) or ["Routine review of symptoms"]), hostile)


def days_from_today(low: int, high: int) -> st.SearchStrategy:
    today = localtime.local_today()
    return st.integers(low, high).map(lambda n: (today + timedelta(days=n)).isoformat())


a_date = st.one_of(days_from_today(-400, 200), hostile)
a_clock = st.one_of(st.sampled_from(["09:00", "12:30", "17:00", "00:00", "23:59", "9:00", "09:00:30"]), hostile)
money = st.one_of(
    st.sampled_from(["0", "0.01", "1", "12.50", "120", "1,200.00", "99999999", "100000000", "1000000.01", "-5",
                     "1e3", "12.345", "１２", "NaN"]),
    hostile,
)

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
FILE_BYTES = [pdf_bytes(), png_bytes(), jpeg_bytes(), b"", ELF, b"MZ\x90\x00" + b"\x00" * 60, b"%PDF-", b"\xff\xd8\xff",
              b"%PDF-" + b"\x00" * (settings.MAX_UPLOAD_BYTES)]
FILE_NAMES = ["report.pdf", "scan.png", "photo.jpeg", "photo.jpg", "report.PDF", "report.exe", "report.pdf.exe",
              "report.exe.pdf", "../../etc/passwd.pdf", "..\\evil.pdf", "/abs/report.pdf", ".hidden.pdf", "report",
              "report.", "a\x00.pdf", "rep<script>.pdf", "r" * 300 + ".pdf", "CON.pdf", "résumé.pdf", "report.svg",
              "report.html", " .pdf", "report.pdf ", "report..pdf"]
IMPORT_BYTES = [b"mrn,full_name,birth_date\nMRN-990001,Ann Lee,1980-01-01\n", b"email,full_name,role\nx@y.org,X Y,lab\n",
                "mrn;name;dob\nMRN-1;Zo\u00eb;1980\n".encode("latin-1"), b'{"resourceType": "Bundle"}', b"", b"\x00\x01"]
CARD_NUMBERS = ["4242 4242 4242 4242", "4000 0000 0000 0002", "4242424242424241", "0", "4" * 40]
EXPIRIES = ["12/30", "1/2030", "13/30", "00/00", "12/1999", "12 / 2099"]
CSV_COLUMNS = ["code", "name", "specimen", "unit", "price", "ranges", "critical_low", "critical_high", "active", "kind",
               "strength", "form", "ingredients", "unit_price", "reorder_level", "lot", "expiry", "quantity",
               "unit_cost", "supplier", "department", "release_rule"]
a_band_list = st.one_of(
    st.sampled_from(["any: 1-2", "any 0-18: 3.4-4.7; any 18-200: 3.5-5.3", "female 0-200: 1-2", "any 0-200 3-5"]),
    st.lists(st.fixed_dictionaries({"sex": choice(["any", "female", "male"]), "age_min": number, "age_max": number,
                                    "low": number, "high": number}), max_size=3),
    hostile)


@dataclass(frozen=True)
class World:
    """The records a hostile call may aim at: id pools per kind of id, and the actors."""

    actors: dict[Role, Actor]
    ids: dict[str, list[int]]
    item_ids: list[int]
    starts: list[str]


def ids_of(world: World, kind: str) -> st.SearchStrategy:
    pool = world.ids.get(kind) or [1]
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool).map(str), hostile)


# The id pool each id-like argument draws from.
ID_KIND = {
    "appointment_id": "appointment", "invoice_id": "invoice", "encounter_id": "encounter", "order_id": "lab_order",
    "result_id": "lab_result", "prescription_id": "prescription", "document_id": "document",
    "notification_id": "notification", "entry_id": "waitlist_entry", "user_id": "user", "department_id": "department",
    "doctor_id": "doctor", "block_id": "doctor_availability", "leave_id": "doctor_leave", "allergy_id": "allergy",
    "problem_id": "problem", "medicine_id": "medicine", "price_id": "service_price", "batch_id": "stock_batch",
    "test_id": "lab_test", "patient_id": "patient", "upload_id": "import_job", "job_id": "import_job",
}


def form_of(cls: type, world: World, **overrides: st.SearchStrategy) -> st.SearchStrategy:
    """A form dataclass with every field hostile (or as ``overrides`` says)."""
    return st.builds(cls, **{f.name: overrides.get(f.name, argument(world, "", f.name)) for f in fields(cls)})


def argument(world: World, service: str, name: str) -> st.SearchStrategy:
    """Values for the keyword argument ``name`` of ``service``: plausible ones and hostile ones."""
    function = service.rsplit(".", 1)[-1]
    specific: dict[tuple[str, str], Callable[[], st.SearchStrategy]] = {
        ("adjust_stock", "reason"): lambda: choice([k.value for k in StockMovementKind]),
        ("add_hours", "start"): lambda: a_clock,
        ("add_hours", "end"): lambda: a_clock,
        ("add_leave", "start"): lambda: a_clock,
        ("add_leave", "end"): lambda: a_clock,
        ("register_patient", "form"): lambda: form_of(Registration, world),
        ("create_staff_user", "form"): lambda: form_of(StaffForm, world),
        ("save_encounter", "form"): lambda: form_of(EncounterForm, world),
        ("receive_stock", "form"): lambda: form_of(ReceiveForm, world),
        ("add_medicine", "form"): lambda: form_of(MedicineForm, world),
        ("edit_medicine", "form"): lambda: form_of(MedicineForm, world),
        ("add_lab_test", "form"): lambda: form_of(LabTestForm, world, ranges=a_band_list),
        ("update_lab_test", "form"): lambda: form_of(LabTestForm, world, ranges=a_band_list),
        ("add_service_price", "form"): lambda: form_of(ServicePriceForm, world),
        ("update_service_price", "form"): lambda: form_of(ServicePriceForm, world),
        ("search_audit", "filters"): lambda: form_of(AuditFilter, world),
        ("export_audit_csv", "filters"): lambda: form_of(AuditFilter, world),
        ("all_appointments", "filters"): lambda: form_of(AppointmentFilter, world),
        ("export_report_csv", "report"): lambda: choice(["appointments", "utilisation", "lab_turnaround",
                                                         "pharmacy", "new_patients"]),
        ("export_accounts_csv", "report"): lambda: choice(["revenue", "receivables", "payers", "departments"]),
        ("worklist", "status"): lambda: choice([s.value for s in LabOrderStatus]),
        ("issue_api_client", "scope"): lambda: choice(["all", "patient"]),
        ("receive_import_file", "kind"): lambda: choice(["patients", "staff", "fhir", "shoes"]),
        ("receive_import_file", "file_name"): lambda: st.one_of(
            st.sampled_from(["p.csv", "s.txt", "b.json", *FILE_NAMES]), hostile),
        ("receive_import_file", "data"): lambda: st.one_of(st.sampled_from(IMPORT_BYTES), st.binary(max_size=64),
                                                           hostile),
        ("receive_import_file", "replacing"): lambda: ids_of(world, "import_job"),
        ("start_import", "mapping"): lambda: st.one_of(st.dictionaries(st.sampled_from(["mrn", "name", "dob", "x"]),
                                                                       plausible_text("mrn", "birth_date", "")),
                                                       hostile),
        ("preview_upload", "mapping"): lambda: st.one_of(st.dictionaries(
            st.sampled_from(["mrn", "name", "dob", "x"]), plausible_text("mrn", "birth_date", "")), hostile),
        ("import_report", "outcome"): lambda: choice(["", "created", "failed", "sideways"]),
        ("all_appointments", "sort"): lambda: choice(["when", "status", "created", "id; DROP TABLE appointment"]),
    }
    if (function, name) in specific:
        return specific[(function, name)]()
    if name in ID_KIND:
        return ids_of(world, ID_KIND[name])
    by_name: dict[str, Callable[[], st.SearchStrategy]] = {
        "test_ids": lambda: st.one_of(st.lists(ids_of(world, "lab_test"), max_size=4), hostile),
        "medicine_ids": lambda: st.one_of(st.lists(ids_of(world, "medicine"), max_size=4), hostile),
        "items": lambda: st.one_of(st.lists(form_of(
            ItemForm, world, medicine_id=ids_of(world, "medicine"), dose=plausible_text("1 tablet", "2 tablets", "5 ml"),
            route=choice(list(ROUTES)), frequency=choice(list(FREQUENCIES)), days=number, quantity=number,
            instructions=plausible_text("after food")), max_size=3), hostile),
        "quantities": lambda: st.one_of(st.dictionaries(
            st.one_of(st.sampled_from(world.item_ids or [1]).map(str), hostile_text), number, max_size=3), hostile),
        "vitals": lambda: st.one_of(st.dictionaries(st.sampled_from(list(VITAL_RANGES)), number, max_size=4), hostile),
        "data": lambda: st.one_of(st.sampled_from(FILE_BYTES), st.binary(max_size=64), hostile),
        "file_name": lambda: st.one_of(st.sampled_from(FILE_NAMES), hostile),
        "starts_at": lambda: st.one_of(st.sampled_from(world.starts or ["2030-01-01T09:00:00+00:00"]), hostile),
        "email": lambda: choice([*DEMO_EMAIL.values(), "new.person@example.org", "MARIA.GARCIA@patients.example"]),
        "password": lambda: choice([demo.DEMO_PASSWORD, "Correct-Horse-Battery-9", "short"]),
        "current_password": lambda: choice([demo.DEMO_PASSWORD, "wrong-password-1"]),
        "new_password": lambda: choice(["Correct-Horse-Battery-9", "short", "x" * 80]),
        "token": lambda: hostile,
        "card_number": lambda: choice(CARD_NUMBERS),
        "expiry": lambda: st.one_of(st.sampled_from(EXPIRIES), a_date),
        "cvc": lambda: choice(["123", "1234", "12a"]),
        "idempotency_key": lambda: choice([uuid.uuid4().hex, billing.new_payment_key()]),
        "amount": lambda: money, "unit_price": lambda: money, "unit_cost": lambda: money, "price": lambda: money,
        "row": lambda: st.one_of(st.dictionaries(st.sampled_from(CSV_COLUMNS), hostile_text, max_size=8), hostile),
        "job_id": lambda: st.one_of(st.none(), hostile),
        "consultation_fee": lambda: money,
        "page": lambda: number, "page_size": lambda: number, "limit": lambda: number, "days": lambda: number,
        "minutes": lambda: number, "weekday": lambda: number, "change": lambda: number, "quantity": lambda: number,
        "reorder_level": lambda: number, "slot_minutes": lambda: number,
        "descending": lambda: hostile, "upcoming": lambda: hostile, "active": lambda: hostile,
        "include_inactive": lambda: hostile, "critical_only": lambda: hostile,
        "day": lambda: a_date, "first_day": lambda: a_date, "date_from": lambda: a_date, "date_to": lambda: a_date,
        "start": lambda: a_date, "end": lambda: a_date, "birth_date": lambda: a_date,
        "role": lambda: choice([r.value for r in Role]),
        "permission": lambda: choice([p.value for p in Permission]),
        "method": lambda: choice([m.value for m in PaymentMethod]),
        "to_status": lambda: choice([c.value for c in ClaimStatus]),
        "priority": lambda: choice([p.value for p in LabPriority]),
        "severity": lambda: choice(["mild", "moderate", "severe"]),
        "which": lambda: choice(["report", "pdf"]),
        "status": lambda: choice([s.value for s in (*AppointmentStatus, *InvoiceStatus, *PrescriptionStatus)]),
        "outcome": lambda: choice([o.value for o in AuditOutcome]),
        "show": lambda: choice(["", "low", "expiring", "expired", "issued", "verified", "done", "open", "overdue",
                                "draft", "paid", "void"]),
        "sort": lambda: choice(["name", "when", "created", "due", "full_name", "email", "status", "last_login",
                                "total", "1; DROP TABLE \"user\"", "(SELECT 1)"]),
        "value": lambda: st.one_of(st.sampled_from(["5.4", "0", "999999999", "1e9", "1000000000", "2.5", "12"]),
                                   number),
        "icd10_code": lambda: choice(["I10", "E11.9", "J45.909", "i10", "ZZZ"]),
        "doctor": lambda: ids_of(world, "doctor"), "user": lambda: hostile, "patient": lambda: hostile,
    }
    if name in by_name:
        return by_name[name]()
    return st.one_of(plausible_text(), hostile)


# --- the world ----------------------------------------------------------------------------------


def _ids(conn: sa.Connection, column: sa.ColumnElement) -> list[int]:
    return list(conn.execute(sa.select(column).order_by(column)).scalars())


def build_world(engine: sa.Engine) -> None:
    """The demo hospital and, through the services, one record in each state a service acts on."""
    with session_scope(engine=engine) as s:
        demo.seed_demo(s, billing_history=True)
    actors = {role: login_as(engine, email) for role, email in DEMO_EMAIL.items()}
    doctor, patient = actors[Role.DOCTOR], actors[Role.PATIENT]
    lab_staff, pharmacist = actors[Role.LAB], actors[Role.PHARMACY]
    maria = patient.user_id
    now = datetime.now().astimezone()

    def visit(days_ago: int) -> int:
        start = now.replace(second=0, microsecond=0) - timedelta(days=days_ago, hours=2)
        appointment_id = insert_appointment(engine, patient_id=maria, doctor_id=doctor.user_id, starts_at=start)
        return call(engine, clinical.open_encounter, actor=doctor, appointment_id=appointment_id).id

    first, _second = visit(3), visit(4)
    call(engine, clinical.save_encounter, actor=doctor, encounter_id=first, form=EncounterForm(
        subjective="Headache for a week", assessment="Tension headache", diagnosis="Hypertension",
        icd10_code="I10", vitals={"bp_systolic": "150", "bp_diastolic": "95", "pulse": "80"}))
    call(engine, clinical.add_allergy, actor=doctor, patient_id=maria, substance="Latex", reaction="Rash")
    call(engine, clinical.add_problem, actor=doctor, patient_id=maria, description="Migraine")
    with engine.connect() as conn:
        medicines = _ids(conn, Medicine.id)[:3]
        tests = list(conn.execute(sa.select(LabTest.id).where(LabTest.numeric, LabTest.critical_high.is_not(None))
                                  .order_by(LabTest.id)).scalars())[:1] + _ids(conn, LabTest.id)[:3]
    for medicine in medicines[:2]:
        items = [ItemForm(medicine_id=medicine, dose="1 tablet", route="oral", frequency="twice daily", days=5)]
        read = call(engine, prescribing.check_prescription, actor=doctor, encounter_id=first, items=items)
        call(engine, prescribing.prescribe, actor=doctor, encounter_id=first, override_reason="Reviewed, benefits outweigh",
             items=items, acknowledged_warnings=read)
    with engine.connect() as conn:
        prescriptions = _ids(conn, Prescription.id)
    call(engine, pharmacy.verify_prescription, actor=pharmacist, prescription_id=prescriptions[-1])
    orders = call(engine, prescribing.order_lab_tests, actor=doctor, encounter_id=first, test_ids=tests[:4],
                  priority="urgent", note="Fasting sample")
    critical, running, collected = orders[0], orders[1], orders[2]
    for order in (critical, running, collected):
        call(engine, lab.collect_sample, actor=lab_staff, order_id=order)
    for order in (critical, running):
        call(engine, lab.start_test, actor=lab_staff, order_id=order)
    call(engine, lab.upload_report_file, actor=lab_staff, order_id=critical, file_name="analyser.pdf", data=pdf_bytes())
    call(engine, lab.enter_result, actor=lab_staff, order_id=critical, value="999999")
    call(engine, documents.upload_document, actor=doctor, patient_id=maria, title="Chest X-ray",
         file_name="xray.png", data=png_bytes())
    with engine.connect() as conn:
        cardiology = conn.execute(sa.select(DoctorProfile.department_id).where(
            DoctorProfile.user_id == doctor.user_id)).scalar_one()
    day = localtime.local_today() + timedelta(days=1)
    for _ in range(14):
        slots = call(engine, appointments.free_slots, actor=patient, department_id=cardiology,
                     doctor_id=doctor.user_id, day=day.isoformat())
        if len(slots) >= 3:
            break
        day += timedelta(days=1)
    call(engine, appointments.book_appointment, actor=patient, department_id=cardiology, doctor_id=doctor.user_id,
         starts_at=slots[0].starts_at, reason="Follow-up of blood pressure")
    call(engine, appointments.join_waitlist, actor=patient, department_id=cardiology, doctor_id="any",
         date_from=day.isoformat(), date_to=(day + timedelta(days=7)).isoformat())
    call(engine, scheduling.add_leave, actor=doctor, doctor_id=doctor.user_id,
         date_from=(localtime.local_today() + timedelta(days=150)).isoformat(), reason="Conference")
    call(engine, jobs.receive_import_file, actor=actors[Role.ADMIN], kind="patients", file_name="p.csv",
         data=IMPORT_BYTES[0])


def world_of(engine: sa.Engine) -> World:
    """The actors (logged in afresh in this copy's database) and the id pools of the world."""
    actors = {role: login_as(engine, email) for role, email in DEMO_EMAIL.items()}
    doctor, patient = actors[Role.DOCTOR], actors[Role.PATIENT]
    with engine.connect() as conn:
        ids = {
            "appointment": _ids(conn, Appointment.id), "invoice": _ids(conn, Invoice.id),
            "encounter": _ids(conn, Encounter.id), "lab_order": _ids(conn, LabOrder.id),
            "lab_result": _ids(conn, LabResult.id), "prescription": _ids(conn, Prescription.id),
            "document": _ids(conn, Document.id), "notification": _ids(conn, Notification.id),
            "waitlist_entry": _ids(conn, WaitlistEntry.id), "user": _ids(conn, User.id),
            "department": _ids(conn, Department.id), "doctor": _ids(conn, DoctorProfile.user_id),
            "doctor_leave": _ids(conn, DoctorLeave.id), "allergy": _ids(conn, Allergy.id),
            "problem": _ids(conn, Problem.id), "medicine": _ids(conn, Medicine.id)[:10],
            "stock_batch": _ids(conn, StockBatch.id)[:10], "lab_test": _ids(conn, LabTest.id),
            "patient": _ids(conn, PatientProfile.user_id), "import_job": _ids(conn, ImportJob.id),
            "doctor_availability": list(conn.execute(sa.select(DoctorAvailability.id).where(
                DoctorAvailability.doctor_id == doctor.user_id)).scalars()),
        }
        # The patient's own invoices and the doctor's own patients come first in their pools.
        own_invoices = list(conn.execute(sa.select(Invoice.id).where(Invoice.patient_id == patient.user_id)).scalars())
        ids["invoice"] = own_invoices + ids["invoice"][:10]
        item_ids = _ids(conn, PrescriptionItem.id)
        starts = [a.isoformat() for a in conn.execute(sa.select(Appointment.starts_at).where(
            Appointment.starts_at > datetime.now().astimezone())).scalars()]
    day = localtime.local_today() + timedelta(days=2)
    starts += [datetime.combine(day, time(hour, minute), tzinfo=settings.TIMEZONE).isoformat()
               for hour in (9, 10, 14) for minute in (0, 20)]
    return World(actors, ids, item_ids, starts)


@pytest.fixture(scope="module")
def private_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The world's key file and stored files in a folder of this module's own."""
    data = tmp_path_factory.mktemp("hostile-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "DATA_DIR", data)
        patch.setattr(settings, "DATA_KEY", "")
        patch.setattr(settings, "FILES_DIR", data / "files")
        crypto.reset_cipher()
        yield
    crypto.reset_cipher()


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="module")
def world_template(_template: str, private_files: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The world, built once: a SQLite file's path, or a PostgreSQL database's name."""
    if not POSTGRES_URL:
        path = tmp_path_factory.mktemp("world") / "world.db"
        shutil.copyfile(_template, path)
        url = f"sqlite:///{path}"
    else:
        name = f"hms_world_{uuid.uuid4().hex[:10]}"
        with _admin_engine().connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{_template}"')
        url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = db_engine.create_engine(url)
    db_engine.use_engine(engine)
    try:
        build_world(engine)
        if not POSTGRES_URL:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db_engine.use_engine(None)
        engine.dispose()
    yield str(path) if not POSTGRES_URL else name
    if POSTGRES_URL:
        with _admin_engine().connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def world_engine(world_template: str, tmp_path) -> Iterator[sa.Engine]:
    """A copy of the world of this test's own, as the process-wide engine."""
    if not POSTGRES_URL:
        path = tmp_path / "hms.db"
        shutil.copyfile(world_template, path)
        url = f"sqlite:///{path}"
    else:
        name = f"hms_test_{uuid.uuid4().hex[:12]}"
        with _admin_engine().connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{world_template}"')
        url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = db_engine.create_engine(url)
    db_engine.use_engine(engine)
    yield engine
    db_engine.use_engine(None)
    engine.dispose()
    if POSTGRES_URL:
        with _admin_engine().connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- what a refusal may change --------------------------------------------------------------------

# Columns a refused call may change on purpose: a failed login counts against the account.
MAY_CHANGE_WHEN_REFUSED = {
    "auth.login": {"user": {"failed_logins", "locked_until"}},
    "auth.complete_login": {"user": {"failed_logins", "locked_until"}, "login_challenge": {"used_at"}},
    "auth.confirm_enrolment": {"user": {"failed_logins", "locked_until"}, "login_challenge": {"used_at"}},
}
_FAILED_SECOND_STEP = {"login.second_factor_failed", "login.lockout", "second_factor.enrol"}
# Audit rows a refused call may leave besides refusals (outcome "denied").
AUDITED_REFUSALS = {
    "auth.login": lambda e: str(e.outcome) == AuditOutcome.FAILED and e.action.startswith("login."),
    "prescribing.prescribe": lambda e: e.action == "prescription.warning",
    "auth.complete_login": lambda e: str(e.outcome) == AuditOutcome.FAILED and e.action in _FAILED_SECOND_STEP,
    "auth.confirm_enrolment": lambda e: str(e.outcome) == AuditOutcome.FAILED and e.action in _FAILED_SECOND_STEP,
    "auth.start_enrolment": lambda e: str(e.outcome) == AuditOutcome.FAILED and e.action in _FAILED_SECOND_STEP,
    "auth.confirm_email": lambda e: str(e.outcome) == AuditOutcome.FAILED and e.action == "email.confirm",
}


def _checksums(engine: sa.Engine, metadata: sa.MetaData, skip_columns: dict[str, set[str]]) -> dict[str, tuple]:
    """Row count and a SHA-256 of every row, per table (not the audit trail nor the counts of failures
    per address), and the stored files."""
    sums: dict[str, tuple] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in {"audit_event", "alembic_version", "throttle"}:
                continue
            columns = [c for c in table.columns if c.name not in skip_columns.get(table.name, set())]
            order = list(table.primary_key.columns) or columns
            rows = conn.execute(sa.select(*columns).order_by(*order)).all()
            sums[table.name] = (len(rows), hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest())
    folder = settings.FILES_DIR
    sums["(stored files)"] = tuple(sorted(p.name for p in folder.iterdir())) if folder.exists() else ()
    return sums


def _last_audit_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(AuditEvent.id))).scalar_one() or 0


def _audit_after(engine: sa.Engine, after: int) -> list[AuditEvent]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)).scalars())


# --- the property ---------------------------------------------------------------------------------


def _keyword_arguments(function: Callable[..., Any]) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name not in ("session", "actor", "visitor")]


def _callers(service: str, world: World) -> list[tuple[str, Any]]:
    """(label, actor) pairs to call ``service`` as: each role that may, and that user stripped of
    every permission."""
    roles = ROLES[service]
    if roles == VISITOR:
        return [("visitor", Anonymous(VISITOR_IP))]
    callers: list[tuple[str, Any]] = []
    for role in roles:
        actor = world.actors[role]
        callers.append((role.value, actor))
    stripped = world.actors[roles[0]]
    callers.append((f"{roles[0].value} without permissions", replace(stripped, permissions=frozenset())))
    return callers


def drive(engine: sa.Engine, service: str, caller: Any, world: World, examples: int) -> None:
    function = SERVICES[service]
    names = _keyword_arguments(function)
    strategy = st.fixed_dictionaries({name: argument(world, service, name) for name in names})
    metadata = sa.MetaData()
    with engine.connect() as conn:
        metadata.reflect(conn)
    skip = MAY_CHANGE_WHEN_REFUSED.get(service, {})
    audited = AUDITED_REFUSALS.get(service, lambda e: False)
    parameters = inspect.signature(function).parameters
    who = {"actor": caller} if "actor" in parameters else {"visitor": caller} if "visitor" in parameters else {}

    # The database as it is between calls: taken again only after a call that succeeded.
    current = [_checksums(engine, metadata, skip)]

    @hsettings(max_examples=examples, deadline=None, database=None, derandomize=not RANDOM,
               suppress_health_check=list(HealthCheck), print_blob=True)
    @given(kwargs=strategy)
    def property_holds(kwargs: dict[str, Any]) -> None:
        before = current[0]
        last = _last_audit_id(engine)
        try:
            with session_scope(engine=engine) as s:
                function(session=s, **who, **kwargs)
        except HMSError:
            after = _checksums(engine, metadata, skip)
            changed = sorted(k for k in before if before[k] != after.get(k))
            assert not changed, f"{service} raised but changed {changed}"
            stray = [(e.action, str(e.outcome)) for e in _audit_after(engine, last)
                     if str(e.outcome) != AuditOutcome.DENIED and not audited(e)]
            assert not stray, f"{service} raised but audited {stray}"
        else:
            current[0] = _checksums(engine, metadata, skip)

    property_holds()


def _cases() -> list[Any]:
    return [pytest.param(service, id=service) for service in sorted(ROLES)]


@pytest.fixture(autouse=True)
def _every_example_reaches_the_service(monkeypatch):
    """Hundreds of examples from one address would be refused by the limits per address after a few."""
    unthrottled(monkeypatch)


@pytest.mark.parametrize("service", _cases())
def test_hostile_input_yields_only_hms_errors_and_refusals_change_nothing(service: str, world_engine: sa.Engine):
    world = world_of(world_engine)
    callers = _callers(service, world)
    for _label, caller in callers:
        permitted = not (isinstance(caller, Actor) and not caller.permissions)
        # A service any role may call shares its examples among the roles.
        examples = max(5, EXAMPLES // max(1, len(callers) - 1)) if permitted else max(3, EXAMPLES // 3)
        drive(world_engine, service, caller, world, examples)
    with session_scope(write=False, engine=world_engine) as s:
        assert audit.verify_chain(s).ok
