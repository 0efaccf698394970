"""The tables of HMS.

Tables are plain SQLModel classes; their schema is owned by the Alembic migrations under
``migrations/versions`` (never ``create_all``). Nothing here may leave the server as is:
services turn rows into the small display records in ``hms_app.services.views``.
"""

from __future__ import annotations

from datetime import date, datetime, time

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hms_app.db.crypto import EncryptedText
from hms_app.db.enums import (
    AppointmentStatus,
    AuditOutcome,
    ChargeKind,
    ClaimStatus,
    ClinicalStatus,
    EncounterStatus,
    ImportStatus,
    InvoiceStatus,
    LabOrderStatus,
    LabPriority,
    LabReleaseRule,
    LineOutcome,
    PaymentMethod,
    PrescriptionStatus,
    Role,
    Sex,
    StockMovementKind,
    WaitlistStatus,
)
from hms_app.db.types import UTCDateTime, utcnow


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    email_skeleton: str | None = Field(default=None, unique=True, index=True)
    """The address's confusable skeleton (``services/core/emails.py``): one account per look-alike
    group. Null only for an account the migration found looking like an older one."""
    email_confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    """When the address was vouched for: by its confirmation link, by the admin who made the
    account, or, for accounts older than confirmation, by the migration. Null: never confirmed."""
    email_confirm_token_hash: str | None = Field(default=None, max_length=64, unique=True, index=True)
    """SHA-256 of the open confirmation link's token; set means a confirmation is owed and the
    account cannot log in until it is made."""
    email_confirm_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    full_name: str = Field(max_length=120)
    role: Role = Field(sa_type=sa.String(20), index=True)
    is_active: bool = Field(default=True)
    password_hash: str = Field(max_length=100)
    must_change_password: bool = Field(default=False)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    language: str | None = Field(default=None, max_length=8)
    """The language the user chose (``services/core/language.LANGUAGES``); null: not chosen, so the
    browser's preference and then the hospital's default apply."""


class AuthSession(SQLModel, table=True):
    """A login. The browser keeps the random token; only its SHA-256 is stored here."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    ip_address: str = Field(default="", max_length=64)


class RolePermission(SQLModel, table=True):
    __tablename__ = "role_permission"

    role: Role = Field(sa_type=sa.String(20), primary_key=True)
    permission: str = Field(max_length=64, primary_key=True)


class PermissionCatalog(SQLModel, table=True):
    """Every permission the defaults were applied for once; admin's later edits then stand."""

    __tablename__ = "permission_catalog"

    permission: str = Field(max_length=64, primary_key=True)
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Hospital(SQLModel, table=True):
    """The hospital this database serves, written once by ``hms init``; at most one row (id 1).

    A database without the row is the demo (or not yet initialised): the name, time zone,
    locale and currency then come from the environment's defaults (``settings``).
    """

    __tablename__ = "hospital"
    __table_args__ = (sa.CheckConstraint("id = 1", name="ck_hospital_one_row"),)

    id: int = Field(default=1, primary_key=True)
    name: str = Field(max_length=120)
    timezone: str = Field(max_length=64)
    locale: str = Field(max_length=20)
    currency: str = Field(max_length=3)
    initialised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Department(SQLModel, table=True):
    __tablename__ = "department"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, sa_column_kwargs={"unique": True})
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class DoctorProfile(SQLModel, table=True):
    __tablename__ = "doctor_profile"

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    department_id: int = Field(foreign_key="department.id", index=True)
    specialty: str = Field(default="", max_length=120)
    consultation_fee_cents: int = Field(default=0)
    slot_minutes: int = Field(default=20)


class PatientProfile(SQLModel, table=True):
    __tablename__ = "patient_profile"

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    mrn: str = Field(max_length=20, sa_column_kwargs={"unique": True})
    birth_date: date | None = None
    sex: Sex = Field(default=Sex.UNKNOWN, sa_type=sa.String(10))
    phone: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=300)
    emergency_contact_name: str = Field(default="", max_length=120)
    emergency_contact_phone: str = Field(default="", max_length=40)
    insurer: str = Field(default="", max_length=120)
    policy_number: str = Field(default="", max_length=60)


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (sa.Index("ix_notification_user_unread", "user_id", "read_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    title: str = Field(max_length=200)
    body: str = Field(default="", max_length=1000)
    link: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class AuditEvent(SQLModel, table=True):
    """One row of the append-only audit trail; ``row_hash`` chains it to its lane's row before."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_occurred_at", "occurred_at"),
        sa.Index("ix_audit_event_actor", "actor_id", "occurred_at"),
        sa.Index("ix_audit_event_patient", "patient_id", "occurred_at"),
        sa.Index("ix_audit_event_action", "action", "occurred_at"),
        sa.Index("ix_audit_event_lane", "lane", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    actor_id: int | None = Field(default=None)
    actor_email: str = Field(default="", max_length=254)
    action: str = Field(max_length=64)
    entity_type: str = Field(default="", max_length=64)
    entity_id: str = Field(default="", max_length=64)
    patient_id: int | None = Field(default=None)
    ip_address: str = Field(default="", max_length=64)
    outcome: AuditOutcome = Field(sa_type=sa.String(10))
    detail: str = Field(default="", max_length=2000)
    prev_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    lane: int = Field(default=0, sa_type=sa.SmallInteger, sa_column_kwargs={"server_default": "0"})
    """Which of the trail's independent chains the row belongs to: ``prev_hash`` is the hash
    of the lane's row before (``services/core/audit.py``)."""


class Counter(SQLModel, table=True):
    """Named sequences (medical record numbers, later invoice numbers), taken under lock."""

    __tablename__ = "counter"

    name: str = Field(max_length=40, primary_key=True)
    value: int = Field(default=0)


class DoctorAvailability(SQLModel, table=True):
    """A doctor's weekly working hours: one row per block (a weekday may have several)."""

    __tablename__ = "doctor_availability"

    id: int | None = Field(default=None, primary_key=True)
    doctor_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    weekday: int = Field(ge=0, le=6)  # Monday is 0, in the hospital's time zone
    start_time: time
    end_time: time


class DoctorLeave(SQLModel, table=True):
    """A dated absence (whole days or hours), stored as a UTC interval."""

    __tablename__ = "doctor_leave"
    __table_args__ = (sa.Index("ix_doctor_leave_doctor_span", "doctor_id", "starts_at", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    doctor_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    ends_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    reason: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


_ACTIVE = "status IN ('requested', 'confirmed')"


class Appointment(SQLModel, table=True):
    """A booked slot. Only one active appointment may start at a doctor's given time:
    the partial unique index below (and, on PostgreSQL, exclusion constraints over the
    time range added by the migration) make a double booking impossible under races."""

    __tablename__ = "appointment"
    __table_args__ = (
        sa.Index(
            "uq_appointment_doctor_start_active", "doctor_id", "starts_at", unique=True,
            sqlite_where=sa.text(_ACTIVE), postgresql_where=sa.text(_ACTIVE),
        ),
        sa.Index("ix_appointment_doctor_starts", "doctor_id", "starts_at"),
        sa.Index("ix_appointment_patient_starts", "patient_id", "starts_at"),
        sa.Index("ix_appointment_department_starts", "department_id", "starts_at"),
        sa.Index("ix_appointment_status_starts", "status", "starts_at"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_appointment_span"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id")
    doctor_id: int = Field(foreign_key="user.id")
    department_id: int = Field(foreign_key="department.id")
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    ends_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: AppointmentStatus = Field(default=AppointmentStatus.REQUESTED, sa_type=sa.String(12))
    reason: str = Field(default="", max_length=500)
    status_reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WaitlistEntry(SQLModel, table=True):
    """A patient waiting for a slot with a doctor, or any doctor of a department."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (sa.Index("ix_waitlist_department_status", "department_id", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id", index=True)
    department_id: int = Field(foreign_key="department.id")
    doctor_id: int | None = Field(default=None, foreign_key="user.id")
    date_from: date
    date_to: date
    status: WaitlistStatus = Field(default=WaitlistStatus.WAITING, sa_type=sa.String(10))
    offered_start: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    offered_doctor_id: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# --- clinical record (encrypted text: see hms_app.db.crypto) -----------------------------------


class Medicine(SQLModel, table=True):
    """The formulary: what doctors prescribe and the pharmacy stocks."""

    __tablename__ = "medicine"
    __table_args__ = (sa.UniqueConstraint("name", "strength", name="uq_medicine_name_strength"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, index=True)
    form: str = Field(max_length=40)
    strength: str = Field(max_length=60)
    unit_price_cents: int = Field(default=0)
    ingredients: str = Field(default="", max_length=300)
    """Active ingredients, lower case, comma-separated (matched against allergies)."""
    drug_class: str = Field(default="", max_length=80)
    reorder_level: int = Field(default=0)
    is_active: bool = Field(default=True)


class LabTest(SQLModel, table=True):
    """The lab catalog. ``ranges`` is JSON: [{sex, age_min, age_max, low, high}, ...]."""

    __tablename__ = "lab_test"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=20, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=120)
    specimen: str = Field(max_length=60)
    unit: str = Field(default="", max_length=30)
    price_cents: int = Field(default=0)
    numeric: bool = Field(default=True)
    ranges: str = Field(default="[]", max_length=4000)
    critical_low: float | None = None
    critical_high: float | None = None
    release_rule: LabReleaseRule = Field(default=LabReleaseRule.NORMAL_AT_ONCE, sa_type=sa.String(16),
                                         sa_column_kwargs={"server_default": LabReleaseRule.NORMAL_AT_ONCE.value})
    """When a result of this test reaches the patient: at once, or after the ordering doctor's review."""
    is_active: bool = Field(default=True)


class ServicePrice(SQLModel, table=True):
    """The price of a service charged by its code that is not a consultation, a lab test or a
    medicine (a dressing, an ECG, a bed-day). A charge copies the price when it is made, so a
    change applies to future charges only."""

    __tablename__ = "service_price"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=20, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=120)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    price_cents: int = Field(default=0)
    is_active: bool = Field(default=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_by: int | None = Field(default=None, foreign_key="user.id")


class Allergy(SQLModel, table=True):
    __tablename__ = "allergy"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id", index=True)
    substance: str = Field(sa_type=EncryptedText)
    reaction: str = Field(default="", sa_type=EncryptedText)
    severity: str = Field(default="moderate", max_length=10)
    status: ClinicalStatus = Field(default=ClinicalStatus.ACTIVE, sa_type=sa.String(10))
    recorded_by: int = Field(foreign_key="user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Problem(SQLModel, table=True):
    """An entry of the patient's problem list."""

    __tablename__ = "problem"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id", index=True)
    description: str = Field(sa_type=EncryptedText)
    icd10_code: str = Field(default="", sa_type=EncryptedText)
    status: ClinicalStatus = Field(default=ClinicalStatus.ACTIVE, sa_type=sa.String(10))
    recorded_by: int = Field(foreign_key="user.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Encounter(SQLModel, table=True):
    """One per appointment: SOAP notes, diagnosis and vitals."""

    __tablename__ = "encounter"
    __table_args__ = (sa.Index("ix_encounter_patient_started", "patient_id", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: int = Field(foreign_key="appointment.id", sa_column_kwargs={"unique": True})
    patient_id: int = Field(foreign_key="user.id")
    doctor_id: int = Field(foreign_key="user.id", index=True)
    subjective: str = Field(default="", sa_type=EncryptedText)
    objective: str = Field(default="", sa_type=EncryptedText)
    assessment: str = Field(default="", sa_type=EncryptedText)
    plan: str = Field(default="", sa_type=EncryptedText)
    diagnosis: str = Field(default="", sa_type=EncryptedText)
    icd10_code: str = Field(default="", sa_type=EncryptedText)
    bp_systolic: int | None = None
    bp_diastolic: int | None = None
    pulse: int | None = None
    temperature_c: float | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    spo2: int | None = None
    status: EncounterStatus = Field(default=EncounterStatus.OPEN, sa_type=sa.String(10))
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Immunization(SQLModel, table=True):
    """A vaccine given, as another system recorded it (HMS itself does not vaccinate yet):
    shown in the chart's timeline and the patient's history, exported as FHIR Immunization."""

    __tablename__ = "immunization"
    __table_args__ = (sa.Index("ix_immunization_patient_given", "patient_id", "given_at"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id")
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id", index=True)
    vaccine: str = Field(sa_type=EncryptedText)
    code_system: str = Field(default="", max_length=200)
    code: str = Field(default="", max_length=40)
    status: str = Field(default="completed", max_length=20)
    """FHIR's own status: completed, entered-in-error or not-done."""
    given_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    recorded_by: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Procedure(SQLModel, table=True):
    """A procedure done to the patient, as another system recorded it: shown in the chart's
    timeline and the patient's history, exported as FHIR Procedure."""

    __tablename__ = "procedure"
    __table_args__ = (sa.Index("ix_procedure_patient_performed", "patient_id", "performed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id")
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id", index=True)
    description: str = Field(sa_type=EncryptedText)
    code_system: str = Field(default="", max_length=200)
    code: str = Field(default="", max_length=40)
    status: str = Field(default="completed", max_length=20)
    """FHIR's own status: completed, in-progress, not-done and so on."""
    performed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    recorded_by: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Prescription(SQLModel, table=True):
    __tablename__ = "prescription"
    __table_args__ = (
        sa.Index("ix_prescription_patient_created", "patient_id", "created_at"),
        sa.Index("ix_prescription_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id")
    doctor_id: int = Field(foreign_key="user.id")
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id", index=True)
    status: PrescriptionStatus = Field(default=PrescriptionStatus.ISSUED, sa_type=sa.String(20))
    status_reason: str = Field(default="", max_length=500)
    """Why the pharmacy rejected it (empty otherwise)."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    checked_by: int | None = Field(default=None, foreign_key="user.id")
    """The pharmacist who verified or rejected it."""
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class PrescriptionItem(SQLModel, table=True):
    __tablename__ = "prescription_item"

    id: int | None = Field(default=None, primary_key=True)
    prescription_id: int = Field(foreign_key="prescription.id", index=True, ondelete="CASCADE")
    medicine_id: int = Field(foreign_key="medicine.id")
    dose: str = Field(max_length=60)
    route: str = Field(max_length=30)
    frequency: str = Field(max_length=40)
    days: int
    quantity: int
    instructions: str = Field(default="", sa_type=EncryptedText)
    warnings: str = Field(default="", sa_type=EncryptedText)
    """The safety warnings raised at prescribing time, as shown to the doctor."""
    override_reason: str = Field(default="", sa_type=EncryptedText)
    """Why the doctor prescribed despite the warnings; shown to the pharmacist."""
    dispensed_quantity: int = Field(default=0)


class StockBatch(SQLModel, table=True):
    """One lot of a medicine on the shelf. ``quantity_on_hand`` is the sum of the batch's
    ledger rows and never goes below zero (a CHECK constraint backs the services' rule)."""

    __tablename__ = "stock_batch"
    __table_args__ = (
        sa.UniqueConstraint("medicine_id", "lot", name="uq_stock_batch_medicine_lot"),
        sa.CheckConstraint("quantity_on_hand >= 0", name="ck_stock_batch_on_hand_not_negative"),
        sa.Index("ix_stock_batch_medicine_expiry", "medicine_id", "expiry_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    medicine_id: int = Field(foreign_key="medicine.id")
    lot: str = Field(max_length=40)
    expiry_date: date
    quantity_on_hand: int = Field(default=0)
    unit_cost_cents: int = Field(default=0)
    supplier: str = Field(default="", max_length=120)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Dispensation(SQLModel, table=True):
    """Units of one prescription item handed out from one batch: one row per batch used."""

    __tablename__ = "dispensation"

    id: int | None = Field(default=None, primary_key=True)
    prescription_id: int = Field(foreign_key="prescription.id", index=True)
    prescription_item_id: int = Field(foreign_key="prescription_item.id", index=True)
    batch_id: int = Field(foreign_key="stock_batch.id", index=True)
    quantity: int
    unit_price_cents: int = Field(default=0)
    """The medicine's price when dispensed, for the patient's bill."""
    dispensed_by: int = Field(foreign_key="user.id")
    dispensed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class StockMovement(SQLModel, table=True):
    """The stock ledger: every change to a batch's quantity, signed (+ in, − out)."""

    __tablename__ = "stock_movement"
    __table_args__ = (
        sa.Index("ix_stock_movement_batch", "batch_id", "id"),
        sa.Index("ix_stock_movement_medicine_at", "medicine_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="stock_batch.id")
    medicine_id: int = Field(foreign_key="medicine.id")
    kind: StockMovementKind = Field(sa_type=sa.String(20))
    quantity: int
    note: str = Field(default="", max_length=300)
    dispensation_id: int | None = Field(default=None, foreign_key="dispensation.id")
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class LabOrder(SQLModel, table=True):
    __tablename__ = "lab_order"
    __table_args__ = (
        sa.Index("ix_lab_order_patient_ordered", "patient_id", "ordered_at"),
        sa.Index("ix_lab_order_status_priority", "status", "priority", "ordered_at"),
        sa.Index("ix_lab_order_doctor_ordered", "doctor_id", "ordered_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id")
    doctor_id: int = Field(foreign_key="user.id")
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id", index=True)
    test_id: int = Field(foreign_key="lab_test.id")
    priority: LabPriority = Field(default=LabPriority.ROUTINE, sa_type=sa.String(10))
    status: LabOrderStatus = Field(default=LabOrderStatus.REQUESTED, sa_type=sa.String(12))
    note: str = Field(default="", sa_type=EncryptedText)
    ordered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    collected_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    cancel_reason: str = Field(default="", max_length=300)
    """Why the lab cancelled the order (plain text: an operational reason, not a clinical note)."""


class Document(SQLModel, table=True):
    """A file in a patient's record, stored encrypted under ``storage_name`` in FILES_DIR."""

    __tablename__ = "document"
    __table_args__ = (sa.Index("ix_document_patient_created", "patient_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="user.id")
    uploaded_by: int = Field(foreign_key="user.id")
    title: str = Field(sa_type=EncryptedText)
    file_name: str = Field(max_length=120)
    content_type: str = Field(max_length=40)
    size_bytes: int
    storage_name: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class BreakGlass(SQLModel, table=True):
    """An emergency opening of a chart outside the doctor's own patients."""

    __tablename__ = "break_glass"
    __table_args__ = (sa.Index("ix_break_glass_doctor_patient", "doctor_id", "patient_id", "expires_at"),)

    id: int | None = Field(default=None, primary_key=True)
    doctor_id: int = Field(foreign_key="user.id")
    patient_id: int = Field(foreign_key="user.id")
    reason: str = Field(sa_type=EncryptedText)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


# --- lab results and report files -------------------------------------------------------------


class LabResult(SQLModel, table=True):
    """The one result of a lab order, with the flag computed from the catalog's range.

    ``flag`` is one of critical_low, low, normal, high, critical_high; "" for a text result
    or a number with no reference range and inside any critical limits.
    """

    __tablename__ = "lab_result"
    __table_args__ = (sa.Index("ix_lab_result_resulted_at", "resulted_at"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="lab_order.id", sa_column_kwargs={"unique": True})
    value_numeric: float | None = None
    value_text: str = Field(default="", sa_type=EncryptedText)
    unit: str = Field(default="", max_length=30)
    flag: str = Field(default="", max_length=15)
    range_low: float | None = None
    range_high: float | None = None
    comment: str = Field(default="", sa_type=EncryptedText)
    verified_by: int = Field(foreign_key="user.id")
    resulted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    turnaround_seconds: int = Field(default=0)
    """From the order to the result, for the turnaround reports."""
    critical_acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    critical_acknowledged_by: int | None = Field(default=None, foreign_key="user.id")
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    """When the patient could first see the value: at entry, or when the doctor reviewed it. None: held."""
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    reviewed_by: int | None = Field(default=None, foreign_key="user.id")
    review_note: str | None = Field(default=None, sa_type=EncryptedText)
    """The reviewing doctor's note to the patient, shown with the released result; None: no review yet."""


class LabReportFile(SQLModel, table=True):
    """The report file the lab uploaded for an order (one per order; a new upload replaces it),
    stored encrypted under ``storage_name`` in FILES_DIR."""

    __tablename__ = "lab_report_file"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="lab_order.id", sa_column_kwargs={"unique": True})
    storage_name: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    file_name: str = Field(max_length=120)
    content_type: str = Field(max_length=40)
    size_bytes: int
    uploaded_by: int = Field(foreign_key="user.id")
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


_DRAFT = "status = 'draft'"


class Invoice(SQLModel, table=True):
    """A patient's bill. Charges gather on the patient's one draft invoice until accounts
    issue it (which numbers it); later charges start a new draft.

    ``subtotal_cents`` is the sum of the lines and ``paid_cents`` the sum of the payments,
    both kept in the transaction that changes them; CHECK constraints keep the arithmetic
    whole: total = subtotal − discount, and 0 ≤ paid ≤ total.
    """

    __tablename__ = "invoice"
    __table_args__ = (
        sa.Index("uq_invoice_one_draft_per_patient", "patient_id", unique=True,
                 sqlite_where=sa.text(_DRAFT), postgresql_where=sa.text(_DRAFT)),
        sa.Index("ix_invoice_status_issued", "status", "issued_at"),
        sa.CheckConstraint("total_cents = subtotal_cents - discount_cents", name="ck_invoice_total"),
        sa.CheckConstraint("discount_cents >= 0 AND discount_cents <= subtotal_cents", name="ck_invoice_discount"),
        sa.CheckConstraint("paid_cents >= 0 AND paid_cents <= total_cents", name="ck_invoice_paid"),
        sa.CheckConstraint("insurer_share_cents >= 0 AND insurer_share_cents <= total_cents",
                           name="ck_invoice_insurer_share"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str | None = Field(default=None, max_length=20, sa_column_kwargs={"unique": True})
    """INV-2026-000123, given when the invoice is issued, in sequence per year."""
    patient_id: int = Field(foreign_key="user.id", index=True)
    status: InvoiceStatus = Field(default=InvoiceStatus.DRAFT, sa_type=sa.String(12))
    subtotal_cents: int = Field(default=0)
    discount_cents: int = Field(default=0)
    discount_reason: str = Field(default="", max_length=300)
    total_cents: int = Field(default=0)
    paid_cents: int = Field(default=0)
    insurer: str = Field(default="", max_length=120)
    policy_number: str = Field(default="", max_length=60)
    insurer_share_cents: int = Field(default=0)
    claim_status: ClaimStatus = Field(default=ClaimStatus.NONE, sa_type=sa.String(10))
    claim_note: str = Field(default="", max_length=300)
    void_reason: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    due_date: date | None = None


class InvoiceLine(SQLModel, table=True):
    """One charge: a completed consultation, a completed lab test, or units dispensed.

    (source_type, source_id) is unique, so a service is never billed twice, however often
    the event that bills it is repeated.
    """

    __tablename__ = "invoice_line"
    __table_args__ = (
        sa.UniqueConstraint("source_type", "source_id", name="uq_invoice_line_source"),
        sa.Index("ix_invoice_line_service_at", "service_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    kind: ChargeKind = Field(sa_type=sa.String(15))
    source_type: str = Field(max_length=20)
    source_id: int
    description: str = Field(max_length=200)
    quantity: int = Field(default=1)
    unit_price_cents: int = Field(default=0)
    amount_cents: int = Field(default=0)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    service_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Payment(SQLModel, table=True):
    """Money in (positive) or a refund (negative, with a reason) against one invoice."""

    __tablename__ = "payment"
    __table_args__ = (
        sa.Index("ix_payment_received_at", "received_at"),
        sa.CheckConstraint("amount_cents <> 0", name="ck_payment_not_zero"),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    amount_cents: int
    method: PaymentMethod = Field(sa_type=sa.String(15))
    reference: str = Field(default="", max_length=80)
    reason: str = Field(default="", max_length=300)
    idempotency_key: str | None = Field(default=None, max_length=64, sa_column_kwargs={"unique": True})
    """Set by the patient portal: a repeated request with the same key finds this payment."""
    recorded_by: int | None = Field(default=None, foreign_key="user.id")
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class DailyBilled(SQLModel, table=True):
    """The charges of one hospital-local day, one department and one kind, on invoices not void.

    Kept in the transaction of every charge (a line added) and every void (its lines taken
    off), so the accounts dashboard reads a year as a few thousand rows instead of summing
    every line; ``hms verify-totals`` recounts them from the lines. ``department_id`` 0 is
    "no department" (a key column cannot be NULL).
    """

    __tablename__ = "daily_billed"

    day: date = Field(primary_key=True)
    department_id: int = Field(default=0, primary_key=True)
    kind: ChargeKind = Field(primary_key=True, sa_type=sa.String(15))
    charges: int = Field(default=0)
    billed_cents: int = Field(default=0, sa_type=sa.BigInteger)


class DailyCollected(SQLModel, table=True):
    """The payments and refunds of one hospital-local day by one method, kept like ``DailyBilled``.

    ``payments`` counts payments and refunds together; refunds are kept as a positive sum.
    """

    __tablename__ = "daily_collected"

    day: date = Field(primary_key=True)
    method: PaymentMethod = Field(primary_key=True, sa_type=sa.String(15))
    payments: int = Field(default=0)
    received_cents: int = Field(default=0, sa_type=sa.BigInteger)
    refunded_cents: int = Field(default=0, sa_type=sa.BigInteger)


class OpenBalance(SQLModel, table=True):
    """The balances of the open invoices (issued or partly paid) issued on one hospital-local day,
    due on one day, with one insurer ("" for none), split between the insurer and the patients.

    Kept in the transaction of every change of an open invoice's balance or its insurer's
    part (issue, discount, void, payment, refund, insurer's share, claim), so receivables by
    age and outstanding by payer read a few thousand rows instead of every open invoice; ages
    are counted from ``issued_day`` at read time. ``insurer_owing`` and ``patients_owing``
    count the invoices on which that side still owes something.
    """

    __tablename__ = "open_balance"

    issued_day: date = Field(primary_key=True)
    due_date: date = Field(primary_key=True)
    insurer: str = Field(primary_key=True, max_length=120)
    invoices: int = Field(default=0)
    balance_cents: int = Field(default=0, sa_type=sa.BigInteger)
    insurer_owing: int = Field(default=0)
    insurer_cents: int = Field(default=0, sa_type=sa.BigInteger)
    patients_owing: int = Field(default=0)
    patients_cents: int = Field(default=0, sa_type=sa.BigInteger)


class RequestReceipt(SQLModel, table=True):
    """A write request done once, by its key: who sent it, which action, what it made or changed.

    The server issues the key when a form opens (``services.core.receipts``); a repeat of the
    request with that key (a double click, a retry after a lost answer) finds this receipt and
    answers with the first request's result instead of writing again.
    """

    __tablename__ = "request_receipt"

    key: str = Field(primary_key=True, max_length=64)
    actor_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    action: str = Field(max_length=40)
    object_id: int | None = Field(default=None)
    result: str = Field(default="", sa_type=sa.Text)
    """The first request's answer, as its service stored it, for a repeat to give again."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Throttle(SQLModel, table=True):
    """Failed attempts of one kind from one client address (``services.core.throttle``).

    ``key`` names the kind and the address ("login|203.0.113.5"); failures are counted in a
    window that starts at the first one, and past the limit the key is refused until
    ``blocked_until``. With ``REFLEX_REDIS_URL`` set the counts live in Redis instead.
    """

    __tablename__ = "throttle"

    key: str = Field(primary_key=True, max_length=200)
    window_started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    failures: int = Field(default=0)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class ApiClient(SQLModel, table=True):
    """A system allowed to read the FHIR API, issued by admin. The token is shown once; only its
    SHA-256 is kept. ``scope`` is "all" (every patient) or "patient" (``patient_id``'s record)."""

    __tablename__ = "api_client"
    __table_args__ = (
        sa.CheckConstraint("(scope = 'all' AND patient_id IS NULL) OR (scope = 'patient' AND patient_id IS NOT NULL)",
                           name="ck_api_client_scope"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    token_hint: str = Field(max_length=12)
    """The token's first characters, so admin can tell clients apart; not enough to use it."""
    scope: str = Field(max_length=10)
    patient_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    created_by: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    revoked_by: int | None = Field(default=None, foreign_key="user.id")


class SecondFactor(SQLModel, table=True):
    """A staff member's authenticator (TOTP). ``enrolled_at`` is empty until a first code confirms it."""

    __tablename__ = "second_factor"

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    secret: str = Field(sa_type=EncryptedText)
    enrolled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_used_step: int = Field(default=0)
    """The 30-second step of the last code accepted: a code is never accepted twice."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class RecoveryCode(SQLModel, table=True):
    """One single-use recovery code, kept only as its SHA-256 (the code holds 80 random bits)."""

    __tablename__ = "recovery_code"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    code_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class LoginChallenge(SQLModel, table=True):
    """A password accepted, a second factor still owed: no session exists until it is paid.

    The browser keeps the random token (in a backend-only var); only its SHA-256 is stored.
    """

    __tablename__ = "login_challenge"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    ip_address: str = Field(default="", max_length=64)


class RoleLoginPolicy(SQLModel, table=True):
    """Whether a role must log in with a second factor; admin switches it per role."""

    __tablename__ = "role_login_policy"

    role: Role = Field(sa_type=sa.String(20), primary_key=True)
    second_factor_required: bool = Field(default=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class EmailOutbox(SQLModel, table=True):
    """One e-mail to send, written in the transaction of the event it tells of.

    ``event_key`` is unique: an event is queued once. ``hms worker`` claims a row by moving it
    from pending to sending with a conditional update, so only one worker sends it.
    """

    __tablename__ = "email_outbox"
    __table_args__ = (sa.Index("ix_email_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=40)
    event_key: str = Field(max_length=120, sa_column_kwargs={"unique": True})
    to_address: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    status: str = Field(default="pending", max_length=10)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class EmailPreference(SQLModel, table=True):
    """A user's choice about e-mail; no row means the defaults (reminders on)."""

    __tablename__ = "email_preference"

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    reminders: bool = Field(default=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ImportJob(SQLModel, table=True):
    """One import of one file: CSV of a kind, or FHIR; a dry run or the real thing.

    The counts are what the job did so far, line by line (or resource by resource); ``total``
    is known once the file has been read through. A run is cancelled by setting
    ``cancel_requested``; the runner stops at its next checkpoint and rolls back what it had
    not committed.
    """

    __tablename__ = "import_job"
    __table_args__ = (sa.Index("ix_import_job_created", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    file_name: str = Field(max_length=200)
    storage_name: str = Field(default="", max_length=64)
    status: ImportStatus = Field(default=ImportStatus.WAITING, sa_type=sa.String(10))
    dry_run: bool = Field(default=False)
    good_rows_only: bool = Field(default=False)
    mapping: str = Field(default="{}", sa_type=sa.Text)
    total: int = Field(default=0)
    processed: int = Field(default=0)
    created: int = Field(default=0)
    updated: int = Field(default=0)
    unchanged: int = Field(default=0)
    skipped: int = Field(default=0)
    failed: int = Field(default=0)
    skipped_by_type: str = Field(default="{}", sa_type=sa.Text)
    committed: bool = Field(default=False)
    message: str = Field(default="", max_length=500)
    cancel_requested: bool = Field(default=False)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class ImportLine(SQLModel, table=True):
    """What an import did with one line of its file (or one resource): the report, line by line.

    ``record`` names the line's record by its key (a record number, a code, a source id),
    never by clinical content.
    """

    __tablename__ = "import_line"
    __table_args__ = (sa.Index("ix_import_line_job_line", "job_id", "line"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="import_job.id", ondelete="CASCADE")
    line: int
    outcome: LineOutcome = Field(sa_type=sa.String(10))
    record: str = Field(default="", max_length=200)
    message: str = Field(default="", max_length=500)


class SourceRecord(SQLModel, table=True):
    """A record brought in from another system, by that system's id: importing it again finds it.

    ``system`` says whose id it is (a FHIR identifier system, ``fhir`` for a resource's own id,
    ``csv:<kind>`` for a CSV's source id column); ``content_hash`` is the SHA-256 of what was
    imported, so an unchanged record is recognised and left alone.
    """

    __tablename__ = "source_record"
    __table_args__ = (sa.Index("ix_source_record_entity", "entity_type", "entity_id"),)

    system: str = Field(max_length=200, primary_key=True)
    source_type: str = Field(max_length=40, primary_key=True)
    source_id: str = Field(max_length=200, primary_key=True)
    entity_type: str = Field(max_length=40)
    entity_id: int
    content_hash: str = Field(default="", max_length=64)
    job_id: int | None = Field(default=None)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
