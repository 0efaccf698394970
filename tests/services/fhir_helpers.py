"""A patient record with something of every kind the FHIR API maps, made through the services
the way the hospital makes it: a visit with vitals and a diagnosis, a problem, an allergy, a
lab result with its report file, a prescription dispensed in part, and an issued invoice."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Invoice
from hms_app.services.accounting import billing
from hms_app.services.care import clinical
from hms_app.services.core.actor import Actor
from hms_app.services.laboratory import lab
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import medicine_id
from tests.services.lab_helpers import (
    open_visit,
    order,
    pdf_bytes,
    running,
    set_patient,
    today,
    years_before,
)
from tests.services.pharmacy_helpers import dispense, in_days, item_ids, prescribe, receive, verify

VITALS = {"bp_systolic": "141", "bp_diastolic": "91", "pulse": "72", "temperature_c": "37.2",
          "weight_kg": "80.5", "height_cm": "176", "spo2": "98"}


@dataclass(frozen=True)
class Record:
    patient_id: int
    encounter_id: int
    problem_id: int
    allergy_id: int
    lab_order_id: int
    prescription_id: int
    item_id: int
    invoice_id: int


def build_record(engine: sa.Engine, actors: dict[Role, Actor], patient_id: int) -> Record:
    """Everything of one patient, through the services (engine with reference data loaded)."""
    doctor, lab_staff, pharmacist = actors[Role.DOCTOR], actors[Role.LAB], actors[Role.PHARMACY]
    set_patient(engine, patient_id, sex="female", birth_date=years_before(today(), 45))
    visit = open_visit(engine, doctor, patient_id)
    call(engine, clinical.save_encounter, actor=doctor, encounter_id=visit, form=clinical.EncounterForm(
        subjective="Headaches", assessment="Raised blood pressure", diagnosis="Essential hypertension",
        icd10_code="I10", vitals=VITALS))
    problem_id = call(engine, clinical.add_problem, actor=doctor, patient_id=patient_id,
                      description="Type 2 diabetes mellitus", icd10_code="E11.9")
    allergy_id = call(engine, clinical.add_allergy, actor=doctor, patient_id=patient_id, substance="Latex",
                      reaction="Contact dermatitis", severity="mild")
    order_id = running(engine, lab_staff, order(engine, doctor, visit, "K"))
    entered = call(engine, lab.enter_result, actor=lab_staff, order_id=order_id, value="5.9", comment="Repeat in a week")
    # High, so held until the ordering doctor reviews it: the record holds it released.
    call(engine, lab.review_result, actor=doctor, result_id=entered.result_id)
    call(engine, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="potassium.pdf",
         data=pdf_bytes())
    medicine = medicine_id(engine, "atorvastatin")
    receive(engine, pharmacist, medicine, "FHIR-1", in_days(300), 100)
    prescription_id = verify(engine, pharmacist, prescribe(engine, doctor, visit, (medicine, 28)))
    [item_id] = item_ids(engine, prescription_id)
    dispense(engine, pharmacist, prescription_id, {item_id: 14})
    with session_scope(write=False, engine=engine) as s:
        invoice_id = s.execute(sa.select(Invoice.id).where(Invoice.patient_id == patient_id,
                                                           Invoice.status == "draft")).scalar_one()
    call(engine, billing.issue_invoice, actor=actors[Role.ACCOUNTS], invoice_id=invoice_id)
    return Record(patient_id, visit, problem_id, allergy_id, order_id, prescription_id, item_id, invoice_id)
