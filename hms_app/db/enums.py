"""Roles, permissions and other closed vocabularies of the hospital."""

from __future__ import annotations

from enum import StrEnum


def N_(message: str) -> str:  # noqa: N802 (the marker's name, which the extractor looks for)
    """Marks a label for the translation catalogue where it is defined; it is translated where it
    is shown, with ``services/core/language._``. The same marker as ``language.N_``: ``db`` may not
    import the services, and a label here must still reach the catalogue."""
    return message


class Role(StrEnum):
    """The six kinds of user; each lands on its own dashboard."""

    ADMIN = "admin"
    ACCOUNTS = "accounts"
    DOCTOR = "doctor"
    LAB = "lab"
    PHARMACY = "pharmacy"
    PATIENT = "patient"

    @property
    def label(self) -> str:
        """The role's name in English, the catalogue's id: shown as ``_(role.label)``."""
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.ADMIN: N_("Administrator"),
    Role.ACCOUNTS: N_("Accounts"),
    Role.DOCTOR: N_("Doctor"),
    Role.LAB: N_("Lab staff"),
    Role.PHARMACY: N_("Pharmacy staff"),
    Role.PATIENT: N_("Patient"),
}

STAFF_UNITS = {
    Role.ADMIN: N_("Administration"),
    Role.ACCOUNTS: N_("Accounts and Billing"),
    Role.LAB: N_("Laboratory"),
    Role.PHARMACY: N_("Pharmacy"),
}
"""The unit a non-clinical staff member works in; doctors belong to a department instead."""


class Permission(StrEnum):
    """What a role may do. Checked by the services on every call."""

    USERS_MANAGE = "users.manage"
    PERMISSIONS_MANAGE = "permissions.manage"
    DEPARTMENTS_MANAGE = "departments.manage"
    AUDIT_VIEW = "audit.view"
    ADMIN_DASHBOARD = "dashboard.admin"
    PROFILE_OWN = "profile.own"
    NOTIFICATIONS_OWN = "notifications.own"
    APPOINTMENTS_BOOK = "appointments.book"
    RECORD_READ_OWN = "record.read_own"
    APPOINTMENTS_MANAGE = "appointments.manage"
    APPOINTMENTS_VIEW_ALL = "appointments.view_all"
    SCHEDULES_MANAGE = "schedules.manage"
    CLINICAL_READ = "clinical.read"
    CLINICAL_WRITE = "clinical.write"
    LAB_WORK = "lab.work"
    PHARMACY_DISPENSE = "pharmacy.dispense"
    INVENTORY_MANAGE = "inventory.manage"
    BILLING_MANAGE = "billing.manage"
    BILLING_PAY_OWN = "billing.pay_own"
    REPORTS_VIEW = "reports.view"
    DATA_IMPORT = "data.import"
    LAB_CATALOG_MANAGE = "lab.catalog"
    PRICES_MANAGE = "prices.manage"

    @property
    def description(self) -> str:
        """What the permission allows, in English (the catalogue's id): shown as ``_(permission.description)``."""
        return PERMISSION_DESCRIPTIONS[self]


PERMISSION_DESCRIPTIONS = {
    Permission.USERS_MANAGE: N_("Create, deactivate and reset user accounts"),
    Permission.PERMISSIONS_MANAGE: N_("Grant and remove permissions per role"),
    Permission.DEPARTMENTS_MANAGE: N_("Create, rename and deactivate departments"),
    Permission.AUDIT_VIEW: N_("View, verify and export the audit trail"),
    Permission.ADMIN_DASHBOARD: N_("See hospital-wide figures on the admin dashboard"),
    Permission.PROFILE_OWN: N_("See and edit one's own profile and password"),
    Permission.NOTIFICATIONS_OWN: N_("Read one's own notifications"),
    Permission.APPOINTMENTS_BOOK: N_("Book, cancel and reschedule one's own appointments"),
    Permission.RECORD_READ_OWN: N_("Read one's own record: history, results, documents, prescriptions, export"),
    Permission.APPOINTMENTS_MANAGE: N_("Confirm, decline and complete one's own patients' appointments"),
    Permission.APPOINTMENTS_VIEW_ALL: N_("See every appointment in the hospital"),
    Permission.SCHEDULES_MANAGE: N_("Edit any doctor's working hours, slot length and leave"),
    Permission.CLINICAL_READ: N_("Open patient charts"),
    Permission.CLINICAL_WRITE: N_("Write encounters, prescriptions and lab orders"),
    Permission.LAB_WORK: N_("Work the lab worklist and enter results"),
    Permission.PHARMACY_DISPENSE: N_("Verify and dispense prescriptions"),
    Permission.INVENTORY_MANAGE: N_("Receive and adjust pharmacy stock"),
    Permission.BILLING_MANAGE: N_("Issue invoices and record payments"),
    Permission.BILLING_PAY_OWN: N_("See and pay one's own invoices"),
    Permission.REPORTS_VIEW: N_("See hospital reports"),
    Permission.DATA_IMPORT: N_("Import patients, staff and records from CSV and FHIR files"),
    Permission.LAB_CATALOG_MANAGE: N_("Edit the lab catalog: tests, units, ranges, critical limits, prices"),
    Permission.PRICES_MANAGE: N_("Edit the prices of the hospital's services"),
}

_EVERYONE = {Permission.PROFILE_OWN, Permission.NOTIFICATIONS_OWN}

DEFAULT_ROLE_PERMISSIONS: dict[Role, set[Permission]] = {
    Role.ADMIN: _EVERYONE
    | {
        Permission.USERS_MANAGE,
        Permission.PERMISSIONS_MANAGE,
        Permission.DEPARTMENTS_MANAGE,
        Permission.AUDIT_VIEW,
        Permission.ADMIN_DASHBOARD,
        Permission.APPOINTMENTS_VIEW_ALL,
        Permission.SCHEDULES_MANAGE,
        Permission.REPORTS_VIEW,
        Permission.DATA_IMPORT,
        Permission.LAB_CATALOG_MANAGE,
        Permission.PRICES_MANAGE,
        Permission.INVENTORY_MANAGE,
    },
    Role.ACCOUNTS: _EVERYONE | {Permission.BILLING_MANAGE, Permission.REPORTS_VIEW, Permission.PRICES_MANAGE},
    Role.DOCTOR: _EVERYONE
    | {Permission.APPOINTMENTS_MANAGE, Permission.CLINICAL_READ, Permission.CLINICAL_WRITE},
    Role.LAB: _EVERYONE | {Permission.LAB_WORK, Permission.LAB_CATALOG_MANAGE},
    Role.PHARMACY: _EVERYONE | {Permission.PHARMACY_DISPENSE, Permission.INVENTORY_MANAGE},
    Role.PATIENT: _EVERYONE
    | {Permission.APPOINTMENTS_BOOK, Permission.RECORD_READ_OWN, Permission.BILLING_PAY_OWN},
}

PROTECTED_ADMIN_PERMISSIONS = {Permission.USERS_MANAGE, Permission.PERMISSIONS_MANAGE}
"""Admin may never lose these, or nobody could manage accounts and permissions again."""


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


class AppointmentStatus(StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DECLINED = "declined"
    NO_SHOW = "no_show"

    @property
    def label(self) -> str:
        """The status's name in English, the catalogue's id: shown as ``_(status.label)``."""
        return APPOINTMENT_STATUS_LABELS[self]


APPOINTMENT_STATUS_LABELS = {
    AppointmentStatus.REQUESTED: N_("Pending"),
    AppointmentStatus.CONFIRMED: N_("Confirmed"),
    AppointmentStatus.COMPLETED: N_("Completed"),
    AppointmentStatus.CANCELLED: N_("Cancelled"),
    AppointmentStatus.DECLINED: N_("Declined"),
    AppointmentStatus.NO_SHOW: N_("No-show"),
}
ACTIVE_APPOINTMENT_STATUSES = (AppointmentStatus.REQUESTED, AppointmentStatus.CONFIRMED)
"""An appointment in one of these holds its slot."""


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    BOOKED = "booked"
    CANCELLED = "cancelled"


class EncounterStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


class ClinicalStatus(StrEnum):
    """Of an allergy or a problem-list entry."""

    ACTIVE = "active"
    RESOLVED = "resolved"


class PrescriptionStatus(StrEnum):
    ISSUED = "issued"
    VERIFIED = "verified"
    PARTLY_DISPENSED = "partly_dispensed"
    DISPENSED = "dispensed"
    REJECTED = "rejected"


class StockMovementKind(StrEnum):
    """Why a batch's quantity changed; every change is one ledger row of one of these kinds."""

    RECEIVE = "receive"
    DISPENSE = "dispense"
    DAMAGED = "damaged"
    EXPIRED = "expired"
    COUNT_CORRECTION = "count_correction"


ADJUSTMENT_KINDS = (StockMovementKind.DAMAGED, StockMovementKind.EXPIRED, StockMovementKind.COUNT_CORRECTION)


class LabPriority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"


class LabReleaseRule(StrEnum):
    """When a lab test's result reaches the patient."""

    AT_ONCE = "at_once"
    """Every result, as soon as the lab enters it."""
    NORMAL_AT_ONCE = "normal_at_once"
    """Normal results at once; abnormal and critical ones after the ordering doctor's review."""
    AFTER_REVIEW = "after_review"
    """Every result after the ordering doctor's review."""


class LabOrderStatus(StrEnum):
    REQUESTED = "requested"
    COLLECTED = "collected"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PARTLY_PAID = "partly_paid"
    PAID = "paid"
    VOID = "void"


class ChargeKind(StrEnum):
    """The kind of service an invoice line bills."""

    CONSULTATION = "consultation"
    LAB = "lab"
    MEDICINE = "medicine"


class PaymentMethod(StrEnum):
    CASH = "cash"
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    INSURANCE = "insurance"


class ClaimStatus(StrEnum):
    """An insurance claim for the insurer's share of one invoice."""

    NONE = "none"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"


class ImportStatus(StrEnum):
    """Where an import job is: waiting for a worker, running, or ended one of three ways."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class LineOutcome(StrEnum):
    """What an import did with one line of a file (or one resource of a bundle)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
