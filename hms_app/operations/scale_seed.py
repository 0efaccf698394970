"""A hospital at scale, for load tests and benchmarks: ``hms seed --scale N``.

At scale 1 the hospital holds 100,000 patients, 1,000,000 appointments over five years (the
last eight weeks of them still to come), about 2,000,000 invoice lines, 500,000 lab orders
with their results, about 1,000,000 stock movements and 3,000,000 audit events; every count
is multiplied by the scale (0.001, 0.01, 0.1, 1, 2 ...). Patients, appointments, lab orders
and audit events come out exact, invoice lines within a few rows; stock movements follow from
what the pharmacy did and land within 2% at scale 1 (7% over at 0.1, where deliveries weigh more).

It loads the demo hospital first (so the demo accounts work, see ``demo``), without the demo's
billing history, which the generated five years replace; then it adds doctors and staff,
patients with their allergies and problems, doctors' leave, and day by day, in time order:
appointments (past ones completed, cancelled, declined or missed, coming ones requested or
confirmed), an encounter for every completed visit, lab orders with results whose flags come
from ``lab.compute_flag`` and the catalog's ranges, prescriptions (from visits, and repeat
prescriptions for chronic problems) verified and dispensed first-expiring lot first from a
stock that twice-weekly deliveries, urgent deliveries, write-offs and count corrections keep
in the ledger, a consultation, lab or medicine charge for every service, invoices issued on the
first of each month for the month before and paid over the following weeks, in part, in full,
by the insurer or not at all, and the audit trail of it all. It is deterministic: the same
``seed``, scale and ``now`` give the same rows.

Each service keeps its rules: appointments of one doctor never overlap (each slot is used
once) and a patient has at most one appointment a day, so the partial unique index and the
PostgreSQL exclusion constraints hold; an invoice's total is its lines less the discount and
what is paid is the sum of its payments, never more than the total; a lot's ledger sums to
its quantity on hand and never runs below zero in time order; the medical record and invoice
counters end at the highest number used; the audit rows continue the demo's hash chain, so
``audit.verify_chain`` passes.

How it writes: rows are generated into per-table buffers and written whenever about
``FLUSH_ROWS`` have gathered, every table in the order of its foreign keys. Memory grows with
the number of patients and with two months of pending audit records, not with the rows
written (about 400 MB at scale 1). On PostgreSQL each buffer goes in with ``COPY ... FROM
STDIN`` on a second thread while the next rows are generated, all in one transaction that
holds the audit trail's advisory lock, so a failed load leaves only the demo. No constraint or
trigger is switched off: foreign keys, CHECKs, unique and exclusion constraints test every row
as it arrives. The loaded tables' plain (non-unique) indexes are dropped at the start and
built again from their exact definitions before the commit, which is much cheaper than
updating them row by row; the tables stay locked until the commit. On SQLite each chunk is one
``executemany`` transaction, with ``synchronous=OFF`` and a large page cache for the load
(foreign keys stay on), and a checkpoint at the end writes and syncs it all; a failed load
leaves the chunks already committed, so start again from a new file.

Shortcuts, said plainly:

- Encrypted columns (notes, diagnoses, allergies, result texts, instructions) hold Fernet
  tokens of a small pool of realistic texts, each encrypted once with the current data key
  and its token reused: encrypting millions of values one by one would take longer than the
  rest of the load. Equal texts therefore have equal tokens here, which the app never does.
- Every generated account shares one bcrypt hash, of the demo password.
- The audit trail is a sample, in time order, of what the services would have recorded (at
  3 events per appointment the spec's count is smaller than a full trail of this much work),
  topped up with logins, logouts, failed logins and chart views; the sessions of those past
  logins are not kept. Its rows come after the demo's one ``demo.seed`` row, which is dated
  the moment the demo was loaded.
- No notifications, documents, lab report files, break-glass entries or waitlist entries.
"""

from __future__ import annotations

import bisect
import json
import math
import queue
import random
import resource
import threading
import time as wallclock
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import sqlalchemy as sa

from hms_app import settings
from hms_app.db.crypto import cipher
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role, Sex
from hms_app.db.models import (
    Appointment,
    Counter,
    Department,
    DoctorAvailability,
    DoctorProfile,
    LabTest,
    Medicine,
    User,
)
from hms_app.db.types import utcnow
from hms_app.operations import demo
from hms_app.services.accounting import totals
from hms_app.services.accounting.billing import PAYMENT_TERMS_DAYS
from hms_app.services.care.clinical import age_in_years
from hms_app.services.care.prescribing import FREQUENCIES, suggested_quantity
from hms_app.services.core import audit, emails, passwords
from hms_app.services.core.errors import Conflict
from hms_app.services.core.numbers import format_money
from hms_app.services.laboratory.lab import compute_flag
from hms_app.services.medicines.inventory import medicine_label
from hms_app.services.reference.icd10 import ICD10
from hms_app.services.reference.lab_catalog import range_from_bands

SPEC = {
    "patients": 100_000,
    "appointments": 1_000_000,
    "invoice_lines": 2_000_000,
    "lab_orders": 500_000,
    "stock_movements": 1_000_000,
    "audit_events": 3_000_000,
}
"""The counts at scale 1."""
STAFF_AT_SCALE_1 = {Role.DOCTOR: 70, Role.LAB: 12, Role.PHARMACY: 10, Role.ACCOUNTS: 6, Role.ADMIN: 2}
"""Staff besides the demo's, at scale 1 (the demo's ten doctors are enough for small scales)."""
YEARS = 5
BOOKING_HORIZON_DAYS = 56
"""Appointments are booked up to eight weeks ahead."""
AUDIT_LAG_DAYS = BOOKING_HORIZON_DAYS + 4
"""A day's audit rows are written once the simulation is this far past it: by then every
booking, result and payment that happened on it has been generated."""
FLUSH_ROWS = 150_000
DEFAULT_SEED = 2026
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400

# --- the people ---------------------------------------------------------------------------------

FIRST_FEMALE = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Sophia", "Grace", "Lily", "Freya", "Emily", "Ella", "Poppy",
    "Aisha", "Fatima", "Maryam", "Zainab", "Priya", "Ananya", "Mei", "Yuki", "Sakura", "Chloe", "Hannah",
    "Ingrid", "Elena", "Sofia", "Lucia", "Maria", "Ana", "Leila", "Nadia", "Amara", "Chiamaka", "Adaeze",
    "Zara", "Ruth", "Esther", "Siobhan", "Niamh", "Aoife", "Joanna", "Katarzyna", "Agnieszka", "Ewa",
    "Laura", "Sarah", "Rebecca", "Jessica", "Charlotte", "Alice",
)
FIRST_MALE = (
    "Oliver", "George", "Noah", "Arthur", "Leo", "Harry", "Oscar", "Jack", "Charlie", "Thomas", "James",
    "William", "Mohammed", "Ahmed", "Yusuf", "Omar", "Ibrahim", "Arjun", "Rohan", "Vikram", "Wei", "Jun",
    "Kenji", "Hiroshi", "Lucas", "Mateo", "Diego", "Luca", "Marco", "Jonas", "Lars", "Sven", "Kwame", "Kofi",
    "Chinedu", "Emeka", "Tunde", "Daniel", "David", "Samuel", "Patrick", "Sean", "Liam", "Piotr", "Tomasz",
    "Michael", "Joseph", "Benjamin", "Ethan", "Adam",
)
LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Thomas", "Clarke",
    "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper", "Hill", "Ward", "Hughes", "Moore",
    "Clark", "King", "Harrison", "Lewis", "Baker", "Lee", "Allen", "Morris", "Khan", "Ali", "Ahmed", "Begum",
    "Hussain", "Shah", "Singh", "Kaur", "Sharma", "Gupta", "Chen", "Wang", "Zhang", "Li", "Liu", "Nguyen",
    "Tanaka", "Sato", "Kim", "Park", "Garcia", "Rodriguez", "Martinez", "Lopez", "Silva", "Santos", "Rossi",
    "Russo", "Bianchi", "Muller", "Schmidt", "Fischer", "Novak", "Kowalski", "Nowak", "Larsen", "Hansen",
    "Johansson", "Andersson", "Okafor", "Adeyemi", "Mensah", "Owusu", "Mwangi", "Cohen", "Levi", "Murphy",
    "Kelly", "O'Brien", "O'Connor", "Byrne", "Walsh", "Petrova", "Ivanova", "Popescu", "Demir", "Yilmaz",
    "Kaya", "Haddad", "Nasser",
)
STREETS = ("High Street", "Station Road", "Church Lane", "Victoria Road", "Park Avenue", "Mill Lane",
           "Queens Road", "King Street", "Green Lane", "Manor Road", "Albert Road", "The Crescent", "Elm Grove",
           "Oak Drive", "Willow Close")
TOWNS = ("London", "Croydon", "Bromley", "Ealing", "Harrow", "Barnet", "Enfield", "Hackney", "Lewisham",
         "Southwark", "Camden", "Islington", "Greenwich", "Hounslow", "Kingston upon Thames")
INSURER_SHARE = {"Northwind Health": 70, "Contoso Mutual": 80, "Fabrikam Care": 70}
"""The demo's insurers and the per cent of an invoice each pays."""
SPECIALTIES = {
    "Cardiology": ("Heart failure", "Arrhythmia", "Interventional cardiology", "Preventive cardiology"),
    "Orthopedics": ("Sports injuries", "Joint replacement", "Spine", "Hand and wrist"),
    "Pediatrics": ("General paediatrics", "Paediatric respiratory", "Neonatology", "Child development"),
    "General Medicine": ("Family medicine", "Internal medicine", "Diabetes", "Elderly care"),
    "Dermatology": ("Skin cancer screening", "Inflammatory skin disease", "Paediatric dermatology", "Acne"),
}
FEES = {"Cardiology": (13000, 16000), "Orthopedics": (11000, 14000), "Pediatrics": (8000, 9500),
        "General Medicine": (5500, 7000), "Dermatology": (9500, 12000)}
SLOT_MINUTES = {"Cardiology": (20, 30), "Orthopedics": (20,), "Pediatrics": (20,), "General Medicine": (15, 20),
                "Dermatology": (15, 20)}
DOCTOR_SHARE = {"General Medicine": 0.30, "Cardiology": 0.20, "Orthopedics": 0.18, "Pediatrics": 0.16,
                "Dermatology": 0.16}
"""How the added doctors spread over the departments, as the visits do."""
WEEKLY_PATTERNS = (  # (share, weekdays, blocks of (start, end) in minutes after midnight)
    (0.55, (0, 1, 2, 3, 4), ((540, 720), (780, 1020))),
    (0.20, (0, 1, 2, 3, 4), ((510, 750), (810, 990))),
    (0.15, None, ((540, 780), (840, 1020))),  # part time: three weekdays, drawn per doctor
    (0.10, (1, 2, 3, 4, 5), ((540, 780),)),  # Tuesday to Saturday mornings ...
)
_TUESDAY_TO_FRIDAY_AFTERNOONS = ((1, 2, 3, 4), (840, 1020))  # ... and weekday afternoons

DEPARTMENT_MIX = {  # visits by age band: child (under 16), adult, 55 and over
    "child": {"Pediatrics": 72, "Dermatology": 12, "Orthopedics": 8, "General Medicine": 8},
    "adult": {"General Medicine": 36, "Orthopedics": 22, "Dermatology": 20, "Cardiology": 12, "Pediatrics": 0},
    "older": {"General Medicine": 32, "Cardiology": 33, "Orthopedics": 22, "Dermatology": 13, "Pediatrics": 0},
}

# --- the clinical record (encrypted: see the module docstring) ----------------------------------

_CHILD_SUSPENSIONS = {"Amoxicillin": "oral suspension", "Paracetamol": "oral suspension",
                      "Ibuprofen": "oral suspension"}
VISITS = {  # department: (reason, subjective, objective, assessment, ICD-10 code, plan, medicines)
    "Cardiology": (
        ("Chest pain on exertion", "Tightness in the chest walking uphill, easing with rest within minutes.",
         "Heart sounds normal, no peripheral oedema, ECG in sinus rhythm.", "Symptoms typical of stable angina.",
         "I20.9", "GTN spray as needed, aspirin and atorvastatin; exercise ECG; review in six weeks.",
         ("Glyceryl trinitrate (GTN)", "Aspirin", "Atorvastatin", "Bisoprolol")),
        ("Follow-up of blood pressure", "Home readings around 150/95; no headaches or visual change.",
         "Blood pressure above target in clinic.", "Hypertension not at target on current treatment.", "I10",
         "Increase amlodipine; home readings for a week; review in four weeks.", ("Amlodipine", "Ramipril", "Losartan")),
        ("Palpitations at night", "Episodes of a racing, irregular heartbeat lasting up to an hour.",
         "Irregularly irregular pulse at 110.", "Paroxysmal atrial fibrillation, CHA2DS2-VASc 3.", "I48.0",
         "Apixaban and bisoprolol; 24-hour ECG; echocardiogram.", ("Apixaban", "Bisoprolol", "Digoxin")),
        ("Breathless with swollen ankles", "Breathless climbing one flight of stairs; sleeps on three pillows.",
         "Bibasal crackles, pitting oedema to mid-shin.", "Decompensated heart failure.", "I50.9",
         "Furosemide; daily weights; echocardiogram; kidney function in a week.",
         ("Furosemide", "Ramipril", "Bisoprolol", "Spironolactone")),
        ("Review after a heart attack", "No chest pain since discharge; walking thirty minutes a day.",
         "Well; heart sounds normal.", "Stable after myocardial infarction.", "I25.2",
         "Continue secondary prevention; cardiac rehabilitation; lipids in three months.",
         ("Aspirin", "Clopidogrel", "Atorvastatin", "Ramipril")),
        ("Murmur heard by the GP", "No symptoms; murmur found at a routine check.",
         "Ejection systolic murmur at the right upper sternal edge.", "Possible aortic stenosis.", "R01.1",
         "Echocardiogram; review with the result.", ()),
        ("High cholesterol", "Family history of early heart disease.", "No xanthelasma; BMI 29.",
         "Mixed hyperlipidaemia.", "E78.2", "Lifestyle advice; atorvastatin; lipids and liver tests in three months.",
         ("Atorvastatin", "Simvastatin")),
        ("Fainting episode", "Collapsed while standing in a queue; recovered within a minute.",
         "Lying and standing blood pressure normal; ECG normal.", "Likely vasovagal syncope.", "R55",
         "Reassurance; avoid triggers; return if it recurs.", ()),
    ),
    "General Medicine": (
        ("Type 2 diabetes review", "On metformin; misses the odd dose.", "Foot pulses present, sensation intact.",
         "Diabetes control below target.", "E11.65", "Increase metformin; HbA1c in three months; eye screening.",
         ("Metformin", "Gliclazide", "Atorvastatin")),
        ("Persistent cough", "Dry cough for three weeks after a cold; no weight loss.", "Chest clear; 37.1 °C.",
         "Post-viral cough.", "R05.9", "Reassurance; return if beyond eight weeks or with red flags.", ()),
        ("Tiredness", "Tired for two months; heavy periods.", "Pale conjunctivae.",
         "Possible iron deficiency anaemia.", "D50.9", "Full blood count and ferritin; iron if confirmed.", ()),
        ("Burning when passing urine", "Dysuria and frequency for two days; no fever.",
         "Suprapubic tenderness; dipstick leucocytes and nitrites positive.",
         "Uncomplicated lower urinary tract infection.", "N39.0", "Nitrofurantoin for three days; urine culture.",
         ("Nitrofurantoin", "Trimethoprim")),
        ("Sore throat and fever", "Sore throat for three days with fever, no cough.",
         "Tonsillar exudate, tender neck nodes; FeverPAIN 4.", "Acute tonsillitis.", "J03.90",
         "Penicillin V for ten days; fluids and paracetamol.",
         ("Phenoxymethylpenicillin (penicillin V)", "Paracetamol")),
        ("Low mood", "Low mood and poor sleep for two months; no thoughts of self-harm.", "PHQ-9 score 15.",
         "Moderate depression.", "F32.A", "Sertraline; talking therapies; review in two weeks.",
         ("Sertraline", "Citalopram", "Fluoxetine")),
        ("Indigestion", "Burning after meals, worse lying down.", "Epigastric tenderness only.",
         "Gastro-oesophageal reflux.", "K21.9", "Omeprazole for four weeks; weight and alcohol advice.",
         ("Omeprazole",)),
        ("Annual health check", "No complaints.", "Blood pressure 124/78; BMI 24.", "Healthy adult.", "Z00.00",
         "Nothing to do; again in a year.", ()),
        ("Thyroid review", "Feels well on levothyroxine.", "Pulse 70, regular.", "Hypothyroidism, treated.",
         "E03.9", "Continue levothyroxine; TSH in six months.", ("Levothyroxine sodium",)),
        ("Asthma review", "Using the blue inhaler most days.", "Peak flow 75% of best; mild wheeze.",
         "Asthma not controlled.", "J45.909", "Add beclometasone; inhaler technique checked; review in six weeks.",
         ("Salbutamol", "Beclometasone")),
    ),
    "Orthopedics": (
        ("Knee pain after running", "Pain at the front of the knee after runs.",
         "Full range of motion, no effusion.", "Patellofemoral pain.", "M25.561",
         "Physiotherapy; ibuprofen as needed; gradual return to running.", ("Ibuprofen", "Paracetamol")),
        ("Knee osteoarthritis", "Pain on stairs, stiff in the morning.", "Crepitus, reduced flexion.",
         "Primary osteoarthritis of the knee.", "M17.11", "Weight advice; analgesia; physiotherapy; X-ray.",
         ("Paracetamol", "Naproxen", "Co-codamol", "Omeprazole")),
        ("Low back pain", "Back pain after lifting, no leg symptoms.",
         "Paraspinal tenderness; straight leg raise negative.", "Mechanical low back pain.", "M54.50",
         "Keep active; naproxen; physiotherapy.", ("Naproxen", "Paracetamol", "Omeprazole")),
        ("Sciatica", "Shooting pain down the left leg.", "Straight leg raise positive on the left.",
         "Lumbar radiculopathy.", "M54.42", "Analgesia; physiotherapy; MRI if no better in six weeks.",
         ("Co-codamol", "Naproxen", "Diazepam")),
        ("Shoulder pain", "Pain lifting the arm overhead.", "Painful arc from 60 to 120 degrees.",
         "Subacromial impingement.", "M75.41", "Physiotherapy; consider a steroid injection.",
         ("Ibuprofen", "Paracetamol")),
        ("Ankle sprain", "Twisted the ankle playing football.",
         "Swelling over the lateral ligament; bears weight.", "Ankle sprain.", "S93.401A",
         "Rest, ice, compression and elevation; analgesia.", ("Ibuprofen", "Paracetamol")),
        ("Wrist fracture follow-up", "Fell on an outstretched hand six weeks ago.",
         "Cast off; mild stiffness.", "Healing distal radius fracture.", "S52.501A",
         "Physiotherapy for wrist movement.", ("Paracetamol",)),
        ("Hip pain", "Groin pain walking more than a mile.", "Reduced internal rotation of the hip.",
         "Osteoarthritis of the hip.", "M16.11", "Analgesia; physiotherapy; X-ray; discuss replacement if worse.",
         ("Paracetamol", "Tramadol", "Naproxen")),
        ("Gout flare", "Hot, swollen big toe since yesterday.", "Red, swollen first MTP joint.", "Acute gout.",
         "M10.9", "Naproxen; allopurinol once settled; urate in four weeks.", ("Naproxen", "Allopurinol", "Omeprazole")),
    ),
    "Pediatrics": (
        ("Fever and earache", "Fever and pulling at the right ear for two days.",
         "Bulging red tympanic membrane.", "Acute otitis media.", "H66.90",
         "Paracetamol or ibuprofen; amoxicillin if no better in three days.", ("Amoxicillin", "Paracetamol", "Ibuprofen")),
        ("Wheezy cough", "Cough and wheeze since a cold.", "Widespread wheeze; saturation 96%.",
         "Viral-induced wheeze.", "J45.909", "Salbutamol through a spacer; asthma plan; return if worse.",
         ("Salbutamol", "Beclometasone")),
        ("Routine child health check", "Growing and feeding well.", "Weight and height on the 50th centile.",
         "Healthy child.", "Z00.129", "Routine immunisations as scheduled.", ()),
        ("Vaccination review", "Due for immunisations.", "Well child, no fever.", "Immunisation visit.", "Z23",
         "Immunisations given; paracetamol if feverish.", ("Paracetamol",)),
        ("Sore throat and rash", "Sore throat and a sandpaper rash.", "Strawberry tongue; fine papular rash.",
         "Scarlet fever.", "A38.9", "Amoxicillin for ten days; off school for 24 hours.", ("Amoxicillin",)),
        ("Eczema flare", "Itchy dry patches in the elbow creases.", "Excoriated eczema in the flexures.",
         "Atopic eczema.", "L20.9", "Emollients; hydrocortisone cream; no soap.", ("Hydrocortisone", "Cetirizine")),
        ("Tummy ache", "Tummy pain on and off; bowels open every three days.", "Soft abdomen; palpable stool.",
         "Constipation.", "K59.00", "Fluids and fibre; review in four weeks.", ()),
        ("Barking cough", "Barking cough at night.", "Stridor only when upset.", "Mild croup.", "J05.0",
         "One dose of dexamethasone given in clinic; safety advice.", ("Paracetamol",)),
    ),
    "Dermatology": (
        ("Mole that changed shape", "A mole on the back has grown.",
         "6 mm pigmented lesion, regular on dermoscopy.", "Benign melanocytic naevus.", "D22.9",
         "Reassurance; photographed; review in three months.", ()),
        ("Acne", "Spots on the face and back for a year.", "Comedones and inflamed papules.",
         "Moderate acne vulgaris.", "L70.0", "Topical treatment; doxycycline for three months.", ("Doxycycline",)),
        ("Psoriasis", "Scaly plaques on the elbows and knees.", "Well-demarcated plaques, 5% of the skin.",
         "Chronic plaque psoriasis.", "L40.0", "Topical steroid; review in eight weeks.",
         ("Hydrocortisone", "Methotrexate")),
        ("Itchy rash on the hands", "Itchy red rash on the hands since a new soap.",
         "Eczematous rash on the backs of the hands.", "Allergic contact dermatitis.", "L23.9",
         "Avoid the trigger; emollients; hydrocortisone cream.", ("Hydrocortisone", "Cetirizine")),
        ("Hives", "Itchy wheals coming and going for a week.", "Urticarial wheals on the trunk.",
         "Acute urticaria.", "L50.9", "Daily cetirizine; return at once with lip or tongue swelling.",
         ("Cetirizine", "Loratadine", "Prednisolone")),
        ("Spot on the nose", "Pearly spot on the nose that bleeds.", "Pearly papule with telangiectasia.",
         "Probable basal cell carcinoma.", "C44.91", "Excision biopsy.", ()),
        ("Thick toenail", "Thick yellow toenail.", "Onycholysis with subungual debris.", "Onychomycosis.",
         "B35.1", "Nail clippings for mycology; discuss treatment.", ("Fluconazole",)),
        ("Painful rash on one side", "Painful blistering rash on one side of the chest.",
         "Vesicular rash in the T6 dermatome.", "Herpes zoster.", "B02.9", "Analgesia; keep it covered.",
         ("Paracetamol", "Co-codamol")),
    ),
}
CHRONIC_PROBLEMS = (  # (ICD-10 code, department of the repeat prescriber, medicines, lowest age)
    ("I10", "Cardiology", ("Amlodipine", "Ramipril", "Losartan"), 35),
    ("E11.9", "General Medicine", ("Metformin", "Gliclazide"), 35),
    ("E03.9", "General Medicine", ("Levothyroxine sodium",), 25),
    ("J45.909", "General Medicine", ("Salbutamol", "Beclometasone"), 5),
    ("E78.5", "Cardiology", ("Atorvastatin", "Simvastatin"), 40),
    ("I48.91", "Cardiology", ("Apixaban", "Bisoprolol"), 55),
    ("F32.A", "General Medicine", ("Sertraline", "Citalopram"), 18),
    ("K21.9", "General Medicine", ("Omeprazole",), 25),
    ("M17.11", "Orthopedics", ("Paracetamol", "Naproxen"), 50),
    ("L40.0", "Dermatology", ("Hydrocortisone",), 18),
    ("L20.9", "Dermatology", ("Hydrocortisone", "Cetirizine"), 0),
)
ALLERGIES = (("Penicillin", 30), ("Amoxicillin", 8), ("Sulfa drugs", 10), ("Aspirin", 6), ("Ibuprofen", 8),
             ("Codeine", 8), ("Latex", 6), ("Peanuts", 8), ("Shellfish", 5), ("Eggs", 4), ("Erythromycin", 4),
             ("Cefalexin", 3))
REACTIONS = ("Rash", "Hives", "Swelling of the lips and face", "Nausea and vomiting", "Wheeze", "Anaphylaxis")
INSTRUCTIONS = ("Take with food.", "Take at night.", "Complete the course.", "Avoid alcohol.",
                "Shake the bottle well.", "Apply thinly to the affected skin.", "Do not take with other NSAIDs.")
LAB_PANELS = {
    "Cardiology": ("TROP", "NA", "K", "CREA", "CHOL", "LDL", "HBA1C", "INR", "HGB"),
    "General Medicine": ("HGB", "WBC", "PLT", "GLU", "HBA1C", "TSH", "CRP", "ALT", "AST", "BILI", "NA", "K", "UREA",
                         "CREA", "CHOL", "UA", "CULT"),
    "Orthopedics": ("CRP", "HGB", "WBC", "INR", "CREA", "UREA"),
    "Pediatrics": ("HGB", "WBC", "PLT", "CRP", "UA", "CULT", "TSH"),
    "Dermatology": ("ALT", "AST", "HGB", "WBC", "CREA", "CRP"),
}
LAB_ORDER_WEIGHT = {"Cardiology": 1.6, "General Medicine": 1.6, "Orthopedics": 0.6, "Pediatrics": 0.7,
                    "Dermatology": 0.4}
TEXT_RESULTS = {
    "UA": ("Negative for protein, glucose, blood and leucocytes.", "Leucocytes ++, nitrites positive.",
           "Protein +, otherwise negative.", "Blood +, otherwise negative."),
    "CULT": ("No significant growth.", "Escherichia coli over 10^5 CFU/mL; sensitive to nitrofurantoin and trimethoprim.",
             "Mixed growth; please send a repeat sample."),
}
LAB_NOTES = ("Fasting sample, please.", "Query anaemia.", "On warfarin.", "Chest pain this morning.",
             "Recheck after dose change.")
LAB_COMMENTS = ("Repeat advised.", "Sample slightly haemolysed.", "Phoned to the ward.")
LAB_PACE = {"stat": (300, 1200, 300, 900), "urgent": (600, 3600, 900, 3600),
            "routine": (900, 4 * 3600, 1800, 6 * 3600)}
"""Seconds from order to collection and from collection to the analyser, by priority (low, high)."""
LAB_CANCEL_REASONS = ("Sample haemolysed; please re-request.", "Patient did not attend for the sample.",
                      "Duplicate request.")
CANCEL_BY_PATIENT = ("Feeling better", "Cannot get time off work", "Booked another appointment", "Unwell with flu", "")
CANCEL_BY_DOCTOR = ("Doctor called to an emergency", "Clinic cancelled: doctor unwell", "Rebooking with a colleague")
DECLINE_REASONS = ("Please see your GP first", "This needs another specialty; please rebook",
                   "No referral letter received yet")
REJECT_REASONS = ("Dose above the licensed maximum; please review.", "Duplicates an active prescription.",
                  "Interaction with a current medicine; please review.")
VOID_REASONS = ("Billed to the wrong patient; re-issued", "Duplicate invoice", "Charged in error")
DISCOUNT_REASONS = ("Goodwill: long wait on the day", "Hardship discount approved by the finance manager",
                    "Staff discount")
CLAIM_REJECTIONS = ("Not covered by the policy", "Pre-authorisation missing", "Policy lapsed")
SUPPLIERS = ("Northbridge Pharma Wholesale", "Alliance Healthcare", "Phoenix Medical Supplies", "AAH Pharmaceuticals")
DAMAGE_NOTES = ("broken in delivery", "damaged in storage", "dropped on the ward")
LEAVE_REASONS = ("Annual leave", "Conference", "Study leave", "Annual leave", "Annual leave")
BANK_HOLIDAYS = ((1, 1), (12, 25), (12, 26))
SEASON = (1.12, 1.10, 1.05, 1.0, 0.97, 0.95, 0.9, 0.8, 1.0, 1.05, 1.08, 0.85)
WEEKDAY = (1.15, 1.05, 1.0, 1.0, 0.85, 0.25, 0.0)

# --- the tables' columns, in the order the rows below give them ---------------------------------

COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("id", "email", "full_name", "role", "is_active", "password_hash", "must_change_password",
             "failed_logins", "locked_until", "created_at", "last_login_at", "email_skeleton", "email_confirmed_at",
             "email_confirm_token_hash", "email_confirm_expires_at", "language"),
    "department": ("id", "name", "is_active", "created_at"),
    "doctor_profile": ("user_id", "department_id", "specialty", "consultation_fee_cents", "slot_minutes"),
    "doctor_availability": ("id", "doctor_id", "weekday", "start_time", "end_time"),
    "patient_profile": ("user_id", "mrn", "birth_date", "sex", "phone", "address", "emergency_contact_name",
                        "emergency_contact_phone", "insurer", "policy_number"),
    "doctor_leave": ("id", "doctor_id", "starts_at", "ends_at", "reason", "created_at"),
    "allergy": ("id", "patient_id", "substance", "reaction", "severity", "status", "recorded_by", "recorded_at",
                "resolved_at"),
    "problem": ("id", "patient_id", "description", "icd10_code", "status", "recorded_by", "recorded_at",
                "resolved_at"),
    "stock_batch": ("id", "medicine_id", "lot", "expiry_date", "quantity_on_hand", "unit_cost_cents", "supplier",
                    "received_at"),
    "appointment": ("id", "patient_id", "doctor_id", "department_id", "starts_at", "ends_at", "status", "reason",
                    "status_reason", "created_at", "updated_at"),
    "encounter": ("id", "appointment_id", "patient_id", "doctor_id", "subjective", "objective", "assessment", "plan",
                  "diagnosis", "icd10_code", "bp_systolic", "bp_diastolic", "pulse", "temperature_c", "weight_kg",
                  "height_cm", "spo2", "status", "started_at", "completed_at"),
    "prescription": ("id", "patient_id", "doctor_id", "encounter_id", "status", "status_reason", "created_at",
                     "updated_at", "checked_by", "checked_at"),
    "prescription_item": ("id", "prescription_id", "medicine_id", "dose", "route", "frequency", "days", "quantity",
                          "instructions", "warnings", "override_reason", "dispensed_quantity"),
    "lab_order": ("id", "patient_id", "doctor_id", "encounter_id", "test_id", "priority", "status", "note",
                  "ordered_at", "updated_at", "collected_at", "started_at", "cancelled_at", "cancel_reason"),
    "lab_result": ("id", "order_id", "value_numeric", "value_text", "unit", "flag", "range_low", "range_high",
                   "comment", "verified_by", "resulted_at", "turnaround_seconds", "critical_acknowledged_at",
                   "critical_acknowledged_by", "released_at", "reviewed_at", "reviewed_by", "review_note"),
    "dispensation": ("id", "prescription_id", "prescription_item_id", "batch_id", "quantity", "unit_price_cents",
                     "dispensed_by", "dispensed_at"),
    "stock_movement": ("id", "batch_id", "medicine_id", "kind", "quantity", "note", "dispensation_id", "actor_id",
                       "created_at"),
    "invoice": ("id", "number", "patient_id", "status", "subtotal_cents", "discount_cents", "discount_reason",
                "total_cents", "paid_cents", "insurer", "policy_number", "insurer_share_cents", "claim_status",
                "claim_note", "void_reason", "created_at", "updated_at", "issued_at", "due_date"),
    "invoice_line": ("id", "invoice_id", "kind", "source_type", "source_id", "description", "quantity",
                     "unit_price_cents", "amount_cents", "department_id", "service_at"),
    "payment": ("id", "invoice_id", "amount_cents", "method", "reference", "reason", "idempotency_key",
                "recorded_by", "received_at"),
    "audit_event": ("id", "occurred_at", "actor_id", "actor_email", "action", "entity_type", "entity_id",
                    "patient_id", "ip_address", "outcome", "detail", "prev_hash", "row_hash", "lane"),
}
"""Every table the load writes, in the order of their foreign keys."""
_WITH_ID = [t for t, cols in COLUMNS.items() if cols[0] == "id"]


@dataclass
class ScaleReport:
    """What a load wrote and what it took."""

    scale: float
    rows: dict[str, int]
    seconds: float
    peak_rss_mb: float


ROWS_AT_SCALE_1 = {
    "user": 100_100, "doctor_profile": 70, "doctor_availability": 667, "patient_profile": 100_000,
    "doctor_leave": 3_029, "allergy": 13_650, "problem": 43_054, "stock_batch": 13_000, "appointment": 1_000_000,
    "encounter": 542_000, "prescription": 694_000, "prescription_item": 978_000, "lab_order": 500_000,
    "lab_result": 492_000, "dispensation": 965_000, "stock_movement": 979_000, "invoice": 678_000,
    "invoice_line": 2_000_000, "payment": 983_000, "audit_event": 3_000_000,
}
"""About what scale 1 writes to each table (measured), for progress bars."""


def estimated_rows(scale: float) -> dict[str, int]:
    return {table: max(1, round(rows * scale)) for table, rows in ROWS_AT_SCALE_1.items()}


def expected_rows(scale: float) -> dict[str, int]:
    """The spec's counts at ``scale`` (invoice lines and stock movements approximately)."""
    return {name: round(count * scale) for name, count in SPEC.items()}


def seed_scale(engine: sa.Engine, *, scale: float, seed: int = DEFAULT_SEED, now: datetime | None = None,
               progress: Callable[[str, int], None] | None = None) -> ScaleReport:
    """Load the demo hospital and then ``scale`` × the spec's hospital into an empty, migrated database.

    Args:
        engine: the database (SQLite or PostgreSQL).
        scale: multiplies every count (1 is 100,000 patients and 1,000,000 appointments).
        seed: the random generator's seed; the same seed, scale and ``now`` give the same rows.
        now: the moment the generated history ends (and the coming appointments start); now by default.
        progress: called with (table, rows) whenever rows of a table have been written.

    Raises:
        Conflict: the database already holds users (the load needs an empty one).
    """
    if not 0 < scale <= 20:
        raise ValueError("the scale must be above 0 and at most 20")
    started = wallclock.perf_counter()
    with session_scope(engine=engine) as session:
        if not demo.database_is_empty(session):
            raise Conflict("The database already holds users; `hms seed --scale` needs an empty, migrated database.")
        demo.seed_demo(session, billing_history=False, work_in_progress=False)
    now = (now or utcnow()).astimezone(UTC).replace(microsecond=0)
    with session_scope(engine=engine, write=False) as session:
        context = _Context.read(session)
        password_hash = passwords.hash_password(demo.DEMO_PASSWORD)
    sink = _PostgresSink(engine) if engine.dialect.name == "postgresql" else _SqliteSink(engine)
    try:
        hospital = _Hospital(context, sink, scale=scale, seed=seed, now=int(now.timestamp()),
                             password_hash=password_hash, progress=progress)
        hospital.run()
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    with session_scope(engine=engine) as session:  # the load wrote its rows without the services
        totals.rebuild_daily_totals(session)
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")  # fresh planner statistics for whoever benchmarks next
    return ScaleReport(scale=scale, rows=dict(hospital.rows), seconds=wallclock.perf_counter() - started,
                       peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# --- what the database holds before the load ----------------------------------------------------


@dataclass
class _Context:
    departments: dict[str, int]
    doctors: list[tuple[int, int, int, int, str, str]]
    """(user id, department id, fee, slot minutes, name, email) of the demo's doctors."""
    hours: dict[int, list[tuple[int, int, int]]]
    """doctor id → (weekday, start minute, end minute) blocks."""
    staff: dict[Role, list[tuple[int, str]]]
    medicines: list[tuple[int, str, str, str, int, int]]
    """(id, label, name, form, unit price, reorder level) of the active medicines."""
    tests: list[tuple[int, str, str, str, int, bool, list, float | None, float | None]]
    """(id, code, name, unit, price, numeric, bands, critical low, critical high) of the active tests."""
    booked: dict[int, list[tuple[int, int]]]
    """doctor id → (start, end) of the appointments already booked (epoch seconds)."""
    max_ids: dict[str, int]
    counters: dict[str, int]

    @classmethod
    def read(cls, session) -> _Context:
        def epoch(value: datetime) -> int:
            return int(value.timestamp())

        departments = {name: id_ for id_, name in session.execute(sa.select(Department.id, Department.name))}
        doctors = [tuple(row) for row in session.execute(
            sa.select(User.id, DoctorProfile.department_id, DoctorProfile.consultation_fee_cents,
                      DoctorProfile.slot_minutes, User.full_name, User.email)
            .join(DoctorProfile, DoctorProfile.user_id == User.id).order_by(User.id))]
        hours: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for doctor, weekday, start, end in session.execute(
                sa.select(DoctorAvailability.doctor_id, DoctorAvailability.weekday, DoctorAvailability.start_time,
                          DoctorAvailability.end_time).order_by(DoctorAvailability.id)):
            hours[doctor].append((weekday, start.hour * 60 + start.minute, end.hour * 60 + end.minute))
        staff: dict[Role, list[tuple[int, str]]] = defaultdict(list)
        for id_, role, email in session.execute(sa.select(User.id, User.role, User.email).order_by(User.id)):
            staff[Role(role)].append((id_, email))
        medicines = [(m.id, medicine_label(m), m.name, m.form, m.unit_price_cents, m.reorder_level)
                     for m in session.execute(sa.select(Medicine).where(Medicine.is_active).order_by(Medicine.id))
                     .scalars()]
        tests = [(t.id, t.code, t.name, t.unit, t.price_cents, t.numeric, json.loads(t.ranges or "[]"),
                  t.critical_low, t.critical_high)
                 for t in session.execute(sa.select(LabTest).where(LabTest.is_active).order_by(LabTest.id)).scalars()]
        booked: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for doctor, starts, ends in session.execute(
                sa.select(Appointment.doctor_id, Appointment.starts_at, Appointment.ends_at)):
            booked[doctor].append((epoch(starts), epoch(ends)))
        max_ids = {}
        for table in _WITH_ID:
            # The table names are this module's own constants, never input.
            max_ids[table] = session.execute(sa.text(f'SELECT coalesce(max(id), 0) FROM "{table}"')).scalar_one()  # noqa: S608
        counters = dict(session.execute(sa.select(Counter.name, Counter.value)).all())
        return cls(departments, doctors, dict(hours), dict(staff), medicines, tests, dict(booked), max_ids, counters)


# --- writing: COPY on PostgreSQL, executemany on SQLite -----------------------------------------


class _Format:
    """Values as the database's text form wants them (UTC timestamps, dates, times, NULL)."""

    def __init__(self, null: object, timestamp_suffix: str, time_suffix: str) -> None:
        self.null = null
        self._days: dict[int, str] = {}
        self._clock = [f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{timestamp_suffix}" for s in range(_DAY)]
        self._time_suffix = time_suffix

    def day(self, ordinal: int) -> str:
        text = self._days.get(ordinal)
        if text is None:
            text = self._days[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def ts(self, t: int) -> str:
        days, seconds = divmod(t, _DAY)
        text = self._days.get(days + _EPOCH_ORDINAL)
        if text is None:
            text = self.day(days + _EPOCH_ORDINAL)
        return text + self._clock[seconds]

    def iso(self, t: int) -> str:
        """``datetime.isoformat()`` of the UTC instant ``t``, as the services write it into audit details."""
        days, seconds = divmod(t, _DAY)
        return f"{self.day(days + _EPOCH_ORDINAL)}T{self._clock[seconds][1:9]}+00:00"

    def iso_micro(self, t: int) -> str:
        """``datetime.isoformat(timespec="microseconds")`` of the UTC instant ``t`` (what the audit chain hashes)."""
        days, seconds = divmod(t, _DAY)
        return f"{self.day(days + _EPOCH_ORDINAL)}T{self._clock[seconds][1:9]}.000000+00:00"

    def tsn(self, t: int | None) -> object:
        return self.null if t is None else self.ts(t)

    def clock(self, minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}:00{self._time_suffix}"

    def n(self, value: object) -> object:
        return self.null if value is None else value


class _PostgresSink:
    """COPY into PostgreSQL on a second thread, in one transaction holding the audit lanes' locks."""

    def __init__(self, engine: sa.Engine) -> None:
        self._raw = engine.raw_connection()
        self.conn = self._raw.driver_connection
        self.fmt = _Format("\\N", "+00", "")
        with self.conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit TO off")
            # Every lane's lock, as the one global lock was: no append takes an id meanwhile. The
            # load's rows continue lane 0.
            cur.execute("SELECT pg_advisory_xact_lock(%s, lane) FROM generate_series(0, %s) AS lane",
                        (audit.PG_AUDIT_LOCK, settings.AUDIT_MAX_LANES - 1))
            cur.execute("SELECT row_hash FROM audit_event WHERE lane = 0 ORDER BY id DESC LIMIT 1")
            row = cur.fetchone()
        self.last_hash = row[0] if row else audit.GENESIS_HASH
        self._deferred = self._drop_plain_indexes()
        self._queue: queue.Queue = queue.Queue(maxsize=3)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._copy_loop, name="hms-scale-copy", daemon=True)
        self._thread.start()

    def _drop_plain_indexes(self) -> list[str]:
        """Drop the loaded tables' plain indexes, returning their exact definitions to rebuild them.

        Indexes behind a primary key, a unique or an exclusion constraint stay: they enforce
        rules during the load. A plain index is only a path for queries, and building it once
        from the loaded rows (a sort) costs far less than updating it row by row.
        """
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = current_schema() AND t.relname = ANY(%s) AND NOT i.indisunique "
                "AND NOT i.indisexclusion AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY t.relname, 1", (list(COLUMNS),))
            found = cur.fetchall()
            for name, _definition in found:
                cur.execute(f"DROP INDEX {name}")
        return [definition for _name, definition in found]

    def _rebuild_indexes(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SET LOCAL maintenance_work_mem TO '256MB'")
            for definition in self._deferred:
                cur.execute(definition)

    def _copy_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue
            statement, data = item
            try:
                with self.conn.cursor() as cur, cur.copy(statement) as copy:
                    copy.write(data)
            except BaseException as error:  # handed to the generating thread at its next write
                self._error = error

    def write(self, table: str, rows: list[tuple]) -> None:
        if self._error is not None:
            raise self._error
        columns = ", ".join(f'"{c}"' for c in COLUMNS[table])
        data = "\n".join(["\t".join(map(str, row)) for row in rows]) + "\n"
        self._queue.put((f'COPY "{table}" ({columns}) FROM STDIN', data.encode()))

    def chunk_done(self) -> None:
        """Nothing to do: the one transaction commits at the end."""

    def _drain(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def set_stock(self, quantities: list[tuple[int, int]]) -> None:
        self._drain()
        with self.conn.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE scale_stock (id bigint PRIMARY KEY, quantity integer) ON COMMIT DROP")
            with cur.copy("COPY scale_stock (id, quantity) FROM STDIN") as copy:
                for row in quantities:
                    copy.write_row(row)
            cur.execute("UPDATE stock_batch SET quantity_on_hand = s.quantity FROM scale_stock s "
                        "WHERE stock_batch.id = s.id")

    def set_counters(self, counters: dict[str, int]) -> None:
        with self.conn.cursor() as cur:
            for name, value in counters.items():
                cur.execute("INSERT INTO counter (name, value) VALUES (%s, %s) ON CONFLICT (name) "
                            "DO UPDATE SET value = greatest(counter.value, excluded.value)", (name, value))
            for table in _WITH_ID:  # the ids were given explicitly: move each sequence past them
                cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608
                            f"(SELECT coalesce(max(id), 0) + 1 FROM \"{table}\"), false)")

    def finish(self) -> None:
        self._drain()
        self._rebuild_indexes()
        self.conn.commit()
        self._raw.close()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("aborted")
            self._queue.put(None)
            self._thread.join()
        self.conn.rollback()
        self._raw.close()


class _SqliteSink:
    """executemany into SQLite, a transaction per chunk, with settings for a bulk load.

    The connection's own settings come back at the end (it returns to the engine's pool), and
    a checkpoint then writes and syncs everything the load committed without syncing.
    """

    _LOAD_SETTINGS = {"synchronous": "OFF", "cache_size": "-262144", "temp_store": "MEMORY"}

    def __init__(self, engine: sa.Engine) -> None:
        self._raw = engine.raw_connection()
        self.conn = self._raw.driver_connection
        self.fmt = _Format(None, ".000000", ".000000")
        self._settings = {name: self.conn.execute(f"PRAGMA {name}").fetchone()[0] for name in self._LOAD_SETTINGS}
        for name, value in self._LOAD_SETTINGS.items():
            self.conn.execute(f"PRAGMA {name}={value}")
        self.conn.execute("BEGIN IMMEDIATE")
        row = self.conn.execute("SELECT row_hash FROM audit_event WHERE lane = 0 ORDER BY id DESC LIMIT 1").fetchone()
        self.last_hash = row[0] if row else audit.GENESIS_HASH

    def write(self, table: str, rows: list[tuple]) -> None:
        columns = COLUMNS[table]
        names = ", ".join(f'"{c}"' for c in columns)
        placeholders = ", ".join("?" * len(columns))
        self.conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({placeholders})', rows)  # noqa: S608

    def chunk_done(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.execute("BEGIN IMMEDIATE")

    def set_stock(self, quantities: list[tuple[int, int]]) -> None:
        self.conn.executemany("UPDATE stock_batch SET quantity_on_hand = ? WHERE id = ?",
                              [(quantity, id_) for id_, quantity in quantities])

    def set_counters(self, counters: dict[str, int]) -> None:
        self.conn.executemany("INSERT INTO counter (name, value) VALUES (?, ?) ON CONFLICT (name) "
                              "DO UPDATE SET value = max(counter.value, excluded.value)", list(counters.items()))

    def _restore(self) -> None:
        for name, value in self._settings.items():
            self.conn.execute(f"PRAGMA {name}={value}")
        self._raw.close()

    def finish(self) -> None:
        self.conn.execute("COMMIT")
        for name, value in self._settings.items():
            self.conn.execute(f"PRAGMA {name}={value}")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._raw.close()

    def abort(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._restore()


# --- the simulation -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Doctor:
    uid: int
    department: str
    department_id: int
    fee: int
    slot: int
    name: str
    email: str
    week: dict[int, list[int]] = field(default_factory=dict)
    """weekday → start minutes of the slots."""
    leave: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Medicine:
    id: int
    label: str
    name: str
    form: str
    price: int
    reorder: int
    pack: int
    lots: list[list] = field(default_factory=list)
    """[batch id, expiry ordinal, quantity, lot code] of lots with stock, first-expiring first."""
    demand: int = 0
    forecast: float = 0.0
    cost: int = 1


@dataclass(slots=True)
class _Visit:
    encounter_id: int
    appointment_id: int
    patient: int
    doctor: _Doctor
    starts: int
    ends: int
    template: tuple
    tests: set[str] = field(default_factory=set)
    """The lab tests ordered at this visit (each at most once)."""


class _Random(random.Random):
    """``random.Random`` with cheaper forms of ``randrange`` and ``choice`` (the load draws millions)."""

    def between(self, low: int, high: int | None = None) -> int:
        """Like ``randrange(low, high)``, or ``randrange(low)`` with one argument."""
        if high is None:
            return int(self.random() * low)
        return low + int(self.random() * (high - low))

    def one_of(self, items):
        return items[int(self.random() * len(items))]


class _Hospital:
    """The simulation: people first, then day after day of the hospital's work, written to ``sink``.

    Times are whole epoch seconds (UTC) and days are local date ordinals throughout; ``fmt``
    turns them into the database's text only when a row is made. Ids are given here, from
    the highest id each table held before the load.
    """

    def __init__(self, context: _Context, sink, *, scale: float, seed: int, now: int, password_hash: str,
                 progress: Callable[[str, int], None] | None) -> None:
        self.ctx, self.sink, self.fmt = context, sink, sink.fmt
        self.scale, self.now, self.password_hash, self.progress = scale, now, password_hash, progress
        self.rng = _Random(seed)
        self.audit_rng = _Random(seed + 1)
        self.tz = settings.TIMEZONE
        self._offsets: dict[int, int] = {}
        self.next_id = {table: context.max_ids[table] + 1 for table in _WITH_ID}
        self.buffers: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
        self.buffered = 0
        self.rows: dict[str, int] = defaultdict(int)
        self.today = self.day_of(now)
        self.first_day = self.today - YEARS * 365 - 1
        self.last_day = self.today + BOOKING_HORIZON_DAYS
        self.tokens: dict[str, str] = {}
        self.empty = self.token("")
        self.staff_email: dict[int, str] = {}
        self.facts: dict[int, list[tuple]] = defaultdict(list)
        self.fact_seq = 0
        self.charges: dict[tuple[int, int], dict[int, list[tuple]]] = defaultdict(dict)
        self.invoice_numbers: dict[int, int] = defaultdict(int)
        for name, value in context.counters.items():
            if name.startswith("invoice-"):
                self.invoice_numbers[int(name[8:])] = value
        self.final_stock: dict[int, int] = {}
        self.last_hash = sink.last_hash
        self.lines_made = 0
        self.lab_carry = 0
        self.recent_visits: list[_Visit] = []
        self.appointment_carry = 0
        self.audited_until = self.first_day - 1

    # --- small helpers -------------------------------------------------------------------------

    def offset(self, ordinal: int) -> int:
        value = self._offsets.get(ordinal)
        if value is None:
            noon = datetime.fromordinal(ordinal).replace(hour=12)
            value = self._offsets[ordinal] = int(self.tz.utcoffset(noon).total_seconds())
        return value

    def at(self, ordinal: int, minutes: float) -> int:
        """The epoch second of ``minutes`` after local midnight of day ``ordinal``."""
        return (ordinal - _EPOCH_ORDINAL) * _DAY + int(minutes * 60) - self.offset(ordinal)

    def day_of(self, t: int) -> int:
        ordinal = t // _DAY + _EPOCH_ORDINAL
        return (t + self.offset(ordinal)) // _DAY + _EPOCH_ORDINAL

    def new_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def token(self, text: str) -> str:
        found = self.tokens.get(text)
        if found is None:
            found = self.tokens[text] = cipher().encrypt(text.encode()).decode()
        return found

    def add(self, table: str, row: tuple) -> None:
        self.buffers[table].append(row)
        self.buffered += 1

    def flush(self) -> None:
        for table, rows in self.buffers.items():
            if rows:
                self.sink.write(table, rows)
                self.rows[table] += len(rows)
                if self.progress:
                    self.progress(table, len(rows))
                self.buffers[table] = []
        self.sink.chunk_done()
        self.buffered = 0

    def fact(self, t: int, action: str, actor: int | None, entity_type: str = "", entity_id: object = "",
             patient: int | None = None, detail: str = "", outcome: str = "success", email: str | None = None) -> None:
        """Something the services would have audited, kept for the day's sample of the trail."""
        if t > self.now or self.audit_rng.random() >= self.keep:
            return
        self.fact_seq += 1
        self.facts[self.day_of(t)].append(
            (t, self.fact_seq, action, actor, entity_type, str(entity_id), patient, outcome, detail, email))

    def email_of(self, uid: int) -> str:
        return self.staff_email.get(uid) or self.patient_email[uid - self.first_patient]

    @staticmethod
    def ip_of(uid: int) -> str:
        if uid % 2:
            return f"203.0.113.{uid % 250 + 1}"
        return f"198.51.100.{uid % 250 + 1}"

    def pick(self, weights: dict) -> object:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    # --- the run ---------------------------------------------------------------------------------

    def run(self) -> None:
        self._plan()
        self._add_staff()
        self._add_patients()
        self._add_leave()
        self.flush()
        for ordinal in range(self.first_day, self.last_day + 1):
            day = date.fromordinal(ordinal)
            if day.day == 1:
                self._issue_invoices(ordinal)
            if ordinal <= self.today and day.weekday() in (0, 3):
                self._pharmacy_round(ordinal, monday=day.weekday() == 0)
            self._simulate_day(ordinal)
            self._audit_until(ordinal - AUDIT_LAG_DAYS)
            if self.buffered >= FLUSH_ROWS:
                self.flush()
        self._draft_invoices()
        self._audit_until(self.today)
        self.flush()
        self.sink.set_stock(sorted(self.final_stock.items()))
        counters = {f"invoice-{year}": value for year, value in self.invoice_numbers.items()}
        counters["mrn"] = self.mrn
        self.sink.set_counters(counters)

    def _plan(self) -> None:
        """How many appointments, lab orders, invoice lines and audit events fall on each day."""
        days = range(self.first_day, self.last_day + 1)
        weights = []
        for ordinal in days:
            day = date.fromordinal(ordinal)
            weight = WEEKDAY[day.weekday()] * SEASON[day.month - 1] * 1.06 ** ((ordinal - self.first_day) / 365)
            if (day.month, day.day) in BANK_HOLIDAYS:
                weight = 0.0
            ahead = ordinal - self.today
            if ahead > 0:  # the further ahead, the fewer booked yet
                weight *= max(0.0, 1 - ahead / (BOOKING_HORIZON_DAYS + 4)) ** 1.3
            weights.append(weight)
        elapsed = min(1.0, max(0.0, (self.now - self.at(self.today, 540)) / (8 * 3600)))
        past = [w if o < self.today else w * elapsed if o == self.today else 0.0 for o, w in zip(days, weights, strict=True)]
        mean = sum(weights) / len(weights)
        audit_weights = [w + 0.15 * mean if o < self.today else (w + 0.15 * mean) * elapsed if o == self.today else 0.0
                         for o, w in zip(days, past, strict=True)]
        totals = expected_rows(self.scale)
        self.appointments_on = self._spread(totals["appointments"], weights)
        self.labs_on = self._spread(totals["lab_orders"], past)
        self.audit_on = self._spread(totals["audit_events"], audit_weights)
        self.lines_by = self._spread(totals["invoice_lines"], past, cumulative=True)
        # Share of the services' audit records kept, so that the sample is about 90% of the trail.
        self.keep = min(1.0, 0.9 * totals["audit_events"] / max(1, 11 * totals["appointments"]))

    def _spread(self, total: int, weights: list[float], *, cumulative: bool = False) -> list[int]:
        """``total`` split over the days in proportion to ``weights``, rounding carried over."""
        whole = sum(weights) or 1.0
        running, done, out = 0.0, 0, []
        for weight in weights:
            running += weight
            reached = round(total * running / whole)
            out.append(reached if cumulative else reached - done)
            done = reached
        return out

    # --- people ------------------------------------------------------------------------------

    def _name(self, female: bool) -> tuple[str, str]:
        return self.rng.one_of(FIRST_FEMALE if female else FIRST_MALE), self.rng.one_of(LAST_NAMES)

    def _user(self, uid: int, email: str, name: str, role: Role, created: int) -> None:
        self.add("user", (uid, email, name, role.value, 1, self.password_hash, 0, 0, self.fmt.null,
                          self.fmt.ts(created), self.fmt.null, emails.skeleton(email), self.fmt.ts(created),
                          self.fmt.null, self.fmt.null, self.fmt.null))

    def _add_staff(self) -> None:
        ctx, rng = self.ctx, self.rng
        hired = self.at(self.first_day - 400, 540)
        used = {email for members in ctx.staff.values() for _id, email in members}
        departments = dict(ctx.departments)
        self.doctors: list[_Doctor] = []
        for uid, department_id, fee, slot, name, email in ctx.doctors:
            department = next(n for n, i in departments.items() if i == department_id)
            doctor = _Doctor(uid, department, department_id, fee, slot, name, email)
            for weekday, start, end in ctx.hours.get(uid, []):
                doctor.week.setdefault(weekday, []).extend(range(start, end - slot + 1, slot))
            self.doctors.append(doctor)
        for role, members in ctx.staff.items():
            for uid, email in members:
                if role != Role.PATIENT:
                    self.staff_email[uid] = email

        def new_email(first: str, last: str) -> str:
            base = f"{first}.{last}".lower().replace("'", "")
            email, n = f"{base}@hms.example", 1
            while email in used:
                n += 1
                email = f"{base}{n}@hms.example"
            used.add(email)
            return email

        added = {role: round(count * self.scale) for role, count in STAFF_AT_SCALE_1.items()}
        for index in range(added[Role.DOCTOR]):
            department = self._department_for_doctor(index, added[Role.DOCTOR])
            first, last = self._name(rng.random() < 0.5)
            uid = self.new_id("user")
            email = new_email(first, last)
            name = f"Dr. {first} {last}"
            self._user(uid, email, name, Role.DOCTOR, hired)
            low, high = FEES[department]
            slot = rng.one_of(SLOT_MINUTES[department])
            doctor = _Doctor(uid, department, departments[department], rng.randrange(low, high + 1, 500), slot,
                             name, email)
            self.add("doctor_profile", (uid, doctor.department_id, rng.one_of(SPECIALTIES[department]), doctor.fee, slot))
            _share, weekdays, blocks = self.pick({p: p[0] for p in WEEKLY_PATTERNS})
            days = weekdays or tuple(sorted(rng.sample(range(5), 3)))
            hours = [(d, s, e) for d in days for s, e in blocks]
            if weekdays and 5 in weekdays:
                hours += [(d, s, e) for d in _TUESDAY_TO_FRIDAY_AFTERNOONS[0]
                          for s, e in (_TUESDAY_TO_FRIDAY_AFTERNOONS[1],)]
            for weekday, start, end in sorted(hours):
                self.add("doctor_availability", (self.new_id("doctor_availability"), uid, weekday,
                                                 self.fmt.clock(start), self.fmt.clock(end)))
                doctor.week.setdefault(weekday, []).extend(range(start, end - slot + 1, slot))
            self.doctors.append(doctor)
            self.staff_email[uid] = email
        for role in (Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.ADMIN):
            for _ in range(added[role]):
                first, last = self._name(rng.random() < 0.5)
                uid = self.new_id("user")
                email = new_email(first, last)
                self._user(uid, email, f"{first} {last}", role, hired)
                ctx.staff.setdefault(role, []).append((uid, email))
                self.staff_email[uid] = email
        self.lab_staff = [uid for uid, _ in ctx.staff[Role.LAB]]
        self.pharmacists = [uid for uid, _ in ctx.staff[Role.PHARMACY]]
        self.clerks = [uid for uid, _ in ctx.staff[Role.ACCOUNTS]]
        self.admins = [uid for uid, _ in ctx.staff[Role.ADMIN]]
        self.by_department: dict[str, list[_Doctor]] = defaultdict(list)
        for doctor in self.doctors:
            self.by_department[doctor.department].append(doctor)
        self.staff_ids = list(self.staff_email)
        self.medicines = {}
        for id_, label, name, form, price, reorder in ctx.medicines:
            solid = form.split()[-1] in ("tablet", "capsule")
            medicine = _Medicine(id_, label, name, form, price, reorder, 28 if solid else 5)
            medicine.cost = max(1, round(price * 0.6))
            self.medicines.setdefault(name, []).append(medicine)
        self.tests = {t[1]: t for t in ctx.tests}
        self.booked: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        """(doctor, local day) → the (start, end) of appointments booked before the load (the demo's)."""
        for doctor_id, spans in ctx.booked.items():
            for start, end in spans:
                self.booked[(doctor_id, self.day_of(start))].append((start, end))
        self.department_mix = {}
        for band, mix in DEPARTMENT_MIX.items():
            names = [name for name, weight in mix.items() if weight]
            running, cumulative = 0, []
            for name in names:
                running += mix[name]
                cumulative.append(running)
            self.department_mix[band] = (names, cumulative)

    def _department_for_doctor(self, index: int, total: int) -> str:
        """Doctors spread over the departments in ``DOCTOR_SHARE``, in a fixed round."""
        running = 0.0
        position = (index + 0.5) / total
        for department, share in DOCTOR_SHARE.items():
            running += share
            if position < running:
                return department
        return "General Medicine"

    def _add_patients(self) -> None:
        rng, fmt = self.rng, self.fmt
        count = expected_rows(self.scale)["patients"]
        self.first_patient = self.next_id["user"]
        self.mrn = self.ctx.counters.get("mrn", 0)
        window = self.at(self.first_day, 0)
        before = window - 8 * 365 * _DAY
        span = self.now - window
        registered = []
        for index in range(count):
            if index < 0.3 * count:
                t = before + (window - before) * index / (0.3 * count)
            else:
                t = window + span * ((index - 0.3 * count) / (0.7 * count)) ** 0.85
            registered.append(min(self.now - 60, int(t) + rng.between(0, 3600)))
        registered.sort()
        self.patient_registered = registered
        self.patient_email: list[str] = []
        self.patient_birth: list[int] = []
        self.patient_sex: list[str] = []
        self.patient_insurer: list[str] = []
        self.patient_policy: list[str] = []
        self.patient_chronic: list[tuple] = []
        """(patient index, code, department, medicines) of the chronic problems, for repeat prescriptions."""
        cumulative, total = [], 0.0
        today = date.fromordinal(self.today)
        doctors = [d.uid for d in self.doctors]
        for index, created in enumerate(registered):
            uid = self.new_id("user")
            u = rng.random()
            sex = Sex.FEMALE if u < 0.51 else Sex.MALE if u < 0.99 else Sex.OTHER if u < 0.995 else Sex.UNKNOWN
            first, last = self._name(sex == Sex.FEMALE or (sex != Sex.MALE and rng.random() < 0.5))
            email = f"{first}.{last}.{index + 1}@patients.example".lower().replace("'", "")
            band = rng.random()
            age = (rng.uniform(0, 16) if band < 0.2 else rng.uniform(16, 40) if band < 0.45
                   else rng.uniform(40, 65) if band < 0.75 else rng.uniform(65, 98))
            birth = today.toordinal() - int(age * 365.25)
            if birth >= self.day_of(created):  # born after registering: registered at birth instead
                birth = self.day_of(created) - rng.between(1, 300)
            self.mrn += 1
            insurer = rng.one_of(("", "", "", "Northwind Health", "Contoso Mutual", "Fabrikam Care"))
            policy = f"POL-{rng.between(1_000_000, 9_999_999)}" if insurer else ""
            self._user(uid, email, f"{first} {last}", Role.PATIENT, created)
            contact_first, _ = self._name(rng.random() < 0.5)
            self.add("patient_profile", (
                uid, f"MRN-{self.mrn:06d}", fmt.day(birth), sex.value, f"+44 7700 9{rng.between(100000):05d}",
                f"{rng.between(1, 240)} {rng.one_of(STREETS)}, {rng.one_of(TOWNS)}", f"{contact_first} {last}",
                f"+44 7700 9{rng.between(100000):05d}", insurer, policy))
            self.patient_email.append(email)
            self.patient_birth.append(birth)
            self.patient_sex.append(sex.value)
            self.patient_insurer.append(insurer)
            self.patient_policy.append(policy)
            activity = rng.lognormvariate(0, 1.0) * (1.8 if age >= 65 else 1.2 if age < 16 else 1.0)
            total += activity
            cumulative.append(total)
            self._add_history(index, uid, created, age, doctors)
        self.patient_weights = cumulative

    def _add_history(self, index: int, uid: int, created: int, age: float, doctors: list[int]) -> None:
        """Allergies and chronic problems recorded some time after registering."""
        rng, fmt = self.rng, self.fmt
        if rng.random() < 0.12:
            for _ in range(1 if rng.random() < 0.85 else 2):
                substance = self.pick(dict(ALLERGIES))
                when = min(self.now, created + rng.between(_DAY, 400 * _DAY))
                self.add("allergy", (self.new_id("allergy"), uid, self.token(substance),
                                     self.token(rng.one_of(REACTIONS)), rng.one_of(("mild", "moderate", "severe")),
                                     "active", rng.one_of(doctors), fmt.ts(when), fmt.null))
        chance = 0.08 if age < 16 else 0.25 if age < 55 else 0.55
        if rng.random() < chance:
            eligible = [p for p in CHRONIC_PROBLEMS if p[3] <= age]
            for code, department, medicines, _lowest in rng.sample(eligible, min(len(eligible), rng.one_of((1, 1, 2)))):
                when = min(self.now, created + rng.between(_DAY, 600 * _DAY))
                resolved = rng.random() < 0.1
                ended = min(self.now, when + rng.between(30 * _DAY, 400 * _DAY)) if resolved else None
                self.add("problem", (self.new_id("problem"), uid, self.token(ICD10[code]), self.token(code),
                                     "resolved" if resolved else "active", rng.one_of(doctors), fmt.ts(when),
                                     fmt.tsn(ended)))
                if not resolved:
                    self.patient_chronic.append((index, when, department, medicines))

    def _add_leave(self) -> None:
        """Some five weeks off a year per doctor, none in the coming two weeks (the demo's bookings)."""
        rng, fmt = self.rng, self.fmt
        for doctor in self.doctors:
            ordinal = self.first_day + rng.between(0, 60)
            while ordinal <= self.last_day:
                length = rng.one_of((1, 1, 2, 5, 5, 10))
                days = list(range(ordinal, ordinal + (length if length < 5 else length + 2 * (length // 5))))
                if not any(self.today <= d <= self.today + 14 for d in days):
                    doctor.leave.update(days)
                    booked = min(self.now, self.at(ordinal, 600) - rng.between(14, 90) * _DAY)
                    self.add("doctor_leave", (self.new_id("doctor_leave"), doctor.uid, fmt.ts(self.at(days[0], 0)),
                                              fmt.ts(self.at(days[-1] + 1, 0)), rng.one_of(LEAVE_REASONS),
                                              fmt.ts(booked)))
                ordinal = days[-1] + rng.between(20, 70)

    # --- a day of the hospital ---------------------------------------------------------------

    def _simulate_day(self, ordinal: int) -> None:
        index = ordinal - self.first_day
        visits = self._book_day(ordinal, self.appointments_on[index] + self.appointment_carry)
        if ordinal > self.today:
            return
        self._order_labs(ordinal, visits, self.labs_on[index] + self.lab_carry)
        self.recent_visits = visits or self.recent_visits
        if ordinal == self.today and self.lab_carry:  # the history's last orders go to the latest visits
            self._order_labs(ordinal, self.recent_visits, self.lab_carry)
        requests = self._prescribe(ordinal, visits, self.lines_by[index] - self.lines_made)
        self._dispense(ordinal, requests)

    def _free_slots(self, ordinal: int) -> dict[str, list[tuple[_Doctor, list[int]]]]:
        weekday = date.fromordinal(ordinal).weekday()
        free: dict[str, list[tuple[_Doctor, list[int]]]] = defaultdict(list)
        for doctor in self.doctors:
            minutes = doctor.week.get(weekday)
            if not minutes or ordinal in doctor.leave:
                continue
            slots = list(minutes)
            taken = self.booked.get((doctor.uid, ordinal))
            if taken:
                slots = [m for m in slots if not any(
                    s < self.at(ordinal, m + doctor.slot) and self.at(ordinal, m) < e for s, e in taken)]
            if slots:
                free[doctor.department].append((doctor, slots))
        return free

    def _book_day(self, ordinal: int, wanted: int) -> list[_Visit]:
        rng = self.rng
        self.appointment_carry = 0
        if wanted <= 0:
            return []
        day_start = self.at(ordinal, 0)
        eligible = bisect.bisect_left(self.patient_registered, day_start)
        free = self._free_slots(ordinal)
        if not eligible or not free:
            self.appointment_carry = wanted
            return []
        weights = self.patient_weights
        top = weights[eligible - 1]
        booked_today: set[int] = set()
        visits: list[_Visit] = []
        made = 0
        for _ in range(wanted):
            for _attempt in range(20):
                patient = min(bisect.bisect_right(weights, rng.random() * top, 0, eligible), eligible - 1)
                if patient not in booked_today:
                    break
            else:
                continue
            age = (ordinal - self.patient_birth[patient]) / 365.25
            band = "child" if age < 16 else "adult" if age < 55 else "older"
            names, cumulative = self.department_mix[band]
            department = names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
            if not free.get(department):
                open_departments = [d for d, doctors in free.items() if doctors]
                if not open_departments:
                    break
                department = rng.one_of(open_departments)
            doctors = free[department]
            position = rng.between(len(doctors))
            doctor, slots = doctors[position]
            k = rng.between(len(slots))
            minute = slots[k]
            slots[k] = slots[-1]
            slots.pop()
            if not slots:
                doctors[position] = doctors[-1]
                doctors.pop()
            booked_today.add(patient)
            made += 1
            visit = self._appointment(ordinal, patient, doctor, minute, age)
            if visit is not None:
                visits.append(visit)
        self.appointment_carry = wanted - made
        return visits

    def _appointment(self, ordinal: int, patient: int, doctor: _Doctor, minute: int, age: float) -> _Visit | None:
        """One appointment with its history; the visit when it was completed."""
        rng, fmt, now = self.rng, self.fmt, self.now
        uid = self.first_patient + patient
        starts = self.at(ordinal, minute)
        ends = starts + doctor.slot * 60
        template = rng.one_of(VISITS[doctor.department])
        lead = min(BOOKING_HORIZON_DAYS * _DAY, int(rng.lognormvariate(2.0, 0.8) * _DAY))
        registered = self.patient_registered[patient]
        created = max(starts - lead, registered + 600)
        if created > now:  # booked lately
            created = max(registered + 60, now - rng.between(60, 3 * _DAY))
        created = min(created, starts - 600)
        appointment_id = self.new_id("appointment")
        confirm = min(created + rng.between(1800, 2 * _DAY), starts - 300)
        u = rng.random()
        status, reason, updated, closer = "confirmed", "", confirm, doctor.uid
        if starts < now:
            if u < 0.55:
                status, updated = "completed", ends + rng.between(0, 900)
            elif u < 0.81:
                status, updated = "cancelled", rng.between(created + 60, starts)
                by_patient = rng.random() < 0.7
                reason = rng.one_of(CANCEL_BY_PATIENT if by_patient else CANCEL_BY_DOCTOR)
                closer = uid if by_patient else doctor.uid
            elif u < 0.92:
                status, updated = "no_show", ends + rng.between(600, 3600)
            else:
                status, updated = "declined", min(starts - 60, created + rng.between(3600, 2 * _DAY))
                reason = rng.one_of(DECLINE_REASONS)
            if updated > now:  # not closed yet: still under way, or not yet marked
                status, updated, reason = "confirmed", confirm, ""
        elif u < 0.1:
            status, updated = "cancelled", min(now, created + rng.between(60, max(61, now - created)))
            reason = rng.one_of(CANCEL_BY_PATIENT)
            closer = uid
        elif u < 0.48 or confirm > now:
            status, updated = "requested", created
        self.add("appointment", (appointment_id, uid, doctor.uid, doctor.department_id, fmt.ts(starts), fmt.ts(ends),
                                 status, template[0], reason, fmt.ts(created), fmt.ts(updated)))
        self.fact(created, "appointment.book", uid, "appointment", appointment_id, uid,
                  f"doctor {doctor.uid} at {self.fmt.iso(starts)}")
        if status != "requested" and status != "declined" and confirm <= updated:
            self.fact(confirm, "appointment.confirm", doctor.uid, "appointment", appointment_id, uid,
                      "requested -> confirmed")
        if status in ("cancelled", "declined", "no_show"):
            action = {"cancelled": "appointment.cancel", "declined": "appointment.decline",
                      "no_show": "appointment.no_show"}[status]
            before = "confirmed" if status != "declined" and confirm <= updated else "requested"
            self.fact(updated, action, closer, "appointment", appointment_id, uid,
                      f"{before} -> {status}" + (f": {reason}" if reason else ""))
        if status != "completed":
            return None
        return self._encounter(appointment_id, patient, doctor, starts, ends, updated, template, age)

    def _encounter(self, appointment_id: int, patient: int, doctor: _Doctor, starts: int, ends: int, completed: int,
                   template: tuple, age: float) -> _Visit:
        rng, fmt = self.rng, self.fmt
        uid = self.first_patient + patient
        encounter_id = self.new_id("encounter")
        _reason, subjective, objective, assessment, code, plan, _medicines = template
        vitals: tuple = (fmt.null,) * 7
        if doctor.department != "Dermatology" or rng.random() < 0.4:
            vitals = self._vitals(age, self.patient_sex[patient])
        self.add("encounter", (encounter_id, appointment_id, uid, doctor.uid, self.token(subjective),
                               self.token(objective), self.token(assessment), self.token(plan),
                               self.token(ICD10[code]), self.token(code), *vitals, "completed",
                               fmt.ts(starts + rng.between(0, 300)), fmt.ts(completed)))
        self.fact(starts + 60, "chart.view", doctor.uid, "patient", uid, uid)
        self.fact(starts + 120, "encounter.start", doctor.uid, "encounter", encounter_id, uid)
        self.fact(completed - 120, "encounter.save", doctor.uid, "encounter", encounter_id, uid)
        self.fact(completed, "encounter.complete", doctor.uid, "encounter", encounter_id, uid)
        self.fact(completed, "appointment.complete", doctor.uid, "appointment", appointment_id, uid,
                  "confirmed -> completed")
        self._charge(completed, uid, "consultation", "appointment", appointment_id,
                     f"Consultation with {doctor.name}, {date.fromordinal(self.day_of(starts)).isoformat()}", 1,
                     doctor.fee, doctor.department_id)
        return _Visit(encounter_id, appointment_id, patient, doctor, starts, ends, template)

    def _vitals(self, age: float, sex: str) -> tuple:
        rng = self.rng
        if age < 16:
            height = round(max(50.0, 75 + 6.2 * age + rng.gauss(0, 5)), 1)
            weight = round(max(3.0, 9 + 2.8 * age + rng.gauss(0, 2.5)), 1)
            systolic, diastolic = round(rng.gauss(100, 8)), round(rng.gauss(62, 6))
            pulse = round(rng.gauss(max(75, 120 - 3 * age), 10))
        else:
            male = sex == "male"
            height = round(rng.gauss(176 if male else 163, 7), 1)
            weight = round(max(40.0, rng.gauss(84 if male else 70, 14)), 1)
            systolic = round(rng.gauss(122 + 0.45 * max(0, age - 30), 15))
            diastolic = round(min(systolic - 25, rng.gauss(79, 9)))
            pulse = round(rng.gauss(74, 10))
        return (systolic, diastolic, pulse, round(rng.gauss(36.8, 0.35), 1), weight, height,
                min(100, round(rng.gauss(97.5, 1.2))))

    # --- lab ---------------------------------------------------------------------------------

    def _order_labs(self, ordinal: int, visits: list[_Visit], wanted: int) -> None:
        rng = self.rng
        self.lab_carry = 0
        if wanted <= 0:
            return
        if not visits:
            self.lab_carry = wanted
            return
        weights = [LAB_ORDER_WEIGHT[v.doctor.department] for v in visits]
        made = 0
        for _ in range(wanted * 3):
            if made == wanted:
                break
            visit = rng.choices(visits, weights=weights)[0]
            panel = [c for c in LAB_PANELS[visit.doctor.department] if c in self.tests]
            choices = [c for c in panel if c not in visit.tests]
            if not choices:
                continue
            code = rng.one_of(choices)
            visit.tests.add(code)
            self._lab_order(visit, self.tests[code])
            made += 1
        self.lab_carry = wanted - made

    def _lab_order(self, visit: _Visit, test: tuple) -> None:
        rng, fmt, now = self.rng, self.fmt, self.now
        test_id, code, name, unit, price, numeric, bands, critical_low, critical_high = test
        uid = self.first_patient + visit.patient
        doctor = visit.doctor
        order_id = self.new_id("lab_order")
        u = rng.random()
        priority = "stat" if u < 0.03 else "urgent" if u < 0.15 else "routine"
        ordered = visit.starts + rng.between(300, max(301, visit.ends - visit.starts))
        collected = ordered + rng.between(*LAB_PACE[priority][:2])
        if priority == "routine" and self.day_of(collected) == self.day_of(ordered) and collected > self.at(
                self.day_of(ordered), 18 * 60):
            collected = self.at(self.day_of(ordered) + 1, 8 * 60 + rng.between(0, 120))
        started = collected + rng.between(*LAB_PACE[priority][2:])
        resulted = started + rng.between(600, 5400 if priority == "routine" else 2400)
        cancelled = rng.random() < 0.015
        status, updated = "completed", resulted
        cancelled_at, cancel_reason = None, ""
        if cancelled:
            status, cancelled_at, cancel_reason = "cancelled", min(now, collected), rng.one_of(LAB_CANCEL_REASONS)
            updated, started, resulted = cancelled_at, None, None
            collected = None if cancel_reason.startswith("Patient") else collected
            if collected is not None and collected > cancelled_at:
                collected = None
        elif resulted > now:
            resulted = None
            if started > now:
                started = None
                if collected > now:
                    collected = None
            status = "in_progress" if started else "collected" if collected else "requested"
            updated = started or collected or ordered
        note = self.token(rng.one_of(LAB_NOTES)) if rng.random() < 0.1 else self.empty
        self.add("lab_order", (order_id, uid, doctor.uid, visit.encounter_id, test_id, priority, status, note,
                               fmt.ts(ordered), fmt.ts(updated), fmt.tsn(collected), fmt.tsn(started),
                               fmt.tsn(cancelled_at), cancel_reason))
        self.fact(ordered, "lab_order.create", doctor.uid, "lab_order", order_id, uid, f"{code} {priority}")
        technician = rng.one_of(self.lab_staff)
        if collected is not None:
            self.fact(collected, "lab_order.collect", technician, "lab_order", order_id, uid)
        if started is not None:
            self.fact(started, "lab_order.start", technician, "lab_order", order_id, uid)
        if cancelled:
            self.fact(cancelled_at, "lab_order.cancel", technician, "lab_order", order_id, uid, cancel_reason)
        if resulted is None:
            return
        result_id = self.new_id("lab_result")
        value_numeric, value_text, flag, low, high = self.fmt.null, self.empty, "", self.fmt.null, self.fmt.null
        result_unit = ""
        if numeric:
            born = date.fromordinal(self.patient_birth[visit.patient])
            age = age_in_years(born, date.fromordinal(self.day_of(resulted)))
            reference = range_from_bands(bands, self.patient_sex[visit.patient], age) if age is not None else None
            value = self._result_value(reference, critical_low, critical_high)
            flag = compute_flag(value, reference, critical_low, critical_high)
            value_numeric, result_unit = value, unit
            if reference:
                low, high = reference
        else:
            value_text = self.token(rng.one_of(TEXT_RESULTS.get(code, ("Normal.",))))
        acknowledged = acknowledged_by = None
        if flag in ("critical_low", "critical_high"):
            acknowledged = resulted + rng.between(300, 3 * 3600)
            acknowledged_by = doctor.uid
            if acknowledged > now:
                acknowledged = acknowledged_by = None
            else:
                self.fact(acknowledged, "lab_result.acknowledge", doctor.uid, "lab_order", order_id, uid)
        comment = self.token(rng.one_of(LAB_COMMENTS)) if rng.random() < 0.05 else self.empty
        self.add("lab_result", (result_id, order_id, value_numeric, value_text, result_unit, flag, low, high, comment,
                                technician, fmt.ts(resulted), resulted - ordered, fmt.tsn(acknowledged),
                                fmt.n(acknowledged_by), fmt.ts(resulted), fmt.null, fmt.null, fmt.null))
        self.fact(resulted, "lab_result.enter", technician, "lab_result", result_id, uid,
                  f"order {order_id}, {code}, flag {flag or 'none'}")
        if rng.random() < 0.5:
            self.fact(resulted + rng.between(3600, 5 * _DAY), "lab_result.view", uid, "lab_order", order_id, uid)
        self._charge(resulted, uid, "lab", "lab_order", order_id, f"Lab test: {name}", 1, price, doctor.department_id)

    def _result_value(self, reference: tuple[float, float] | None, critical_low: float | None,
                      critical_high: float | None) -> float:
        rng = self.rng
        if reference is None:
            low, high = (critical_low or 0.0), (critical_high or 10.0)
        else:
            low, high = reference
        span = max(high - low, 0.1)
        u = rng.random()
        if u < 0.74 or (u < 0.86 and low <= 0):
            value = low + span * rng.triangular(0.05, 0.95, 0.5)
        elif u < 0.86:
            value = max(low * 0.3, low - span * rng.uniform(0.02, 0.5))
            if critical_low is not None:
                value = max(value, critical_low)
        elif u < 0.985:
            value = high + span * rng.uniform(0.02, 0.6)
            if critical_high is not None:
                value = min(value, critical_high)
        elif critical_high is not None and (critical_low is None or u < 0.995):
            value = critical_high * rng.uniform(1.02, 1.5)
        elif critical_low is not None:
            value = critical_low * rng.uniform(0.5, 0.98)
        else:
            value = high + span * rng.uniform(0.6, 1.5)
        decimals = 0 if high >= 100 else 1 if high >= 10 else 2
        return round(max(0.0, value), decimals)

    # --- pharmacy ----------------------------------------------------------------------------

    def _medicine(self, name: str, child: bool) -> _Medicine | None:
        options = self.medicines.get(name)
        if not options:
            return None
        if child and name in _CHILD_SUSPENSIONS:
            for medicine in options:
                if medicine.form == _CHILD_SUSPENSIONS[name]:
                    return medicine
        solid = [m for m in options if m.pack == 28] or options
        return solid[0]

    def _item(self, medicine: _Medicine, chronic: bool) -> tuple[str, str, str, int, int]:
        """(dose, route, frequency, days, quantity) as a doctor would write it for ``medicine``."""
        rng, form = self.rng, medicine.form
        days = rng.one_of((28, 56)) if chronic else rng.one_of((3, 5, 7, 7, 10, 14))
        if form.endswith(("tablet", "capsule")):
            frequency = rng.one_of(("once daily", "at night")) if chronic else rng.one_of(
                ("twice daily", "three times daily", "four times daily", "once daily"))
            dose = "2 tablets" if medicine.name == "Paracetamol" else f"1 {form.split()[-1]}"
            return dose, "oral", frequency, days, suggested_quantity(dose, frequency, days)
        if form.startswith("oral"):
            frequency = rng.one_of(("three times daily", "four times daily"))
            return "5 mL", "oral", frequency, days, max(1, math.ceil(5 * FREQUENCIES[frequency] * days / 100))
        if form == "inhaler":
            return "2 puffs", "inhaled", rng.one_of(("twice daily", "four times daily")), 30, 1
        if form == "cream":
            return "1 application", "topical", "twice daily", 14, 1
        if form == "sublingual spray":
            return "1 spray", "sublingual", "four times daily", 30, 1
        if medicine.name.startswith("Insulin"):
            return "10 units", "subcutaneous", "once daily", 28, 1
        return "1 g", "intramuscular", "once daily", 3, 3

    def _prescribe(self, ordinal: int, visits: list[_Visit], needed: int) -> list[tuple]:
        """Prescriptions of the day: from the visits, then repeats until ``needed`` charges are planned."""
        rng = self.rng
        requests = []
        planned = 0
        for visit in visits:
            names = visit.template[6]
            if not names or rng.random() >= 0.9:
                continue
            child = (ordinal - self.patient_birth[visit.patient]) / 365.25 < 16
            count = min(len(names), rng.one_of((1, 1, 2, 2, 3)))
            medicines = [m for n in rng.sample(names, count) if (m := self._medicine(n, child))]
            if medicines:
                requests.append(self._prescription(visit.patient, visit.doctor, visit.encounter_id,
                                                   visit.ends + rng.between(0, 600), medicines, chronic=False))
                planned += len(medicines)
        eligible = bisect.bisect_left(self.patient_registered, self.at(ordinal, 0))
        chronic = self.patient_chronic
        for _ in range(4 * max(0, needed - planned)):
            if planned >= needed or not chronic:
                break
            patient, since, department, names = chronic[rng.between(len(chronic))]
            if patient >= eligible or since > self.at(ordinal, 9 * 60):
                continue
            doctors = self.by_department[department]
            child = (ordinal - self.patient_birth[patient]) / 365.25 < 16
            medicines = [m for n in rng.sample(names, min(len(names), rng.one_of((1, 1, 2))))
                         if (m := self._medicine(n, child))]
            if not medicines or not doctors:
                continue
            requests.append(self._prescription(patient, rng.one_of(doctors), None,
                                               self.at(ordinal, rng.between(9 * 60, 17 * 60)), medicines, chronic=True))
            planned += len(medicines)
        requests.sort(key=lambda r: (r[0], r[1]))
        return requests

    def _prescription(self, patient: int, doctor: _Doctor, encounter_id: int | None, created: int,
                      medicines: list[_Medicine], *, chronic: bool) -> tuple:
        """Write the prescription and its items; returns (dispense time, id, ...) for the pharmacy."""
        rng, fmt, now = self.rng, self.fmt, self.now
        uid = self.first_patient + patient
        prescription_id = self.new_id("prescription")
        pharmacist = rng.one_of(self.pharmacists)
        checked = created + rng.between(600, 2700)
        dispensed = checked + rng.between(300, 1500)
        u = rng.random()
        if checked > now:
            status, checked_at, checked_by, updated = "issued", None, None, created
        elif u < 0.015:
            status, checked_at, checked_by, updated = "rejected", checked, pharmacist, checked
        elif dispensed > now:
            status, checked_at, checked_by, updated = "verified", checked, pharmacist, checked
        else:
            status, checked_at, checked_by, updated = ("partly_dispensed" if u < 0.045 else "dispensed",
                                                       checked, pharmacist, dispensed)
        items = []
        for number, medicine in enumerate(medicines):
            dose, route, frequency, days, quantity = self._item(medicine, chronic)
            given = 0
            if status == "dispensed":
                given = quantity
            elif status == "partly_dispensed" and number == 0:
                given = max(1, quantity // 2)
            item_id = self.new_id("prescription_item")
            instructions = self.token(rng.one_of(INSTRUCTIONS)) if rng.random() < 0.4 else self.empty
            self.add("prescription_item", (item_id, prescription_id, medicine.id, dose, route, frequency, days,
                                           quantity, instructions, self.empty, self.empty, given))
            items.append((item_id, medicine, given))
        self.add("prescription", (prescription_id, uid, doctor.uid, fmt.n(encounter_id), status,
                                  rng.one_of(REJECT_REASONS) if status == "rejected" else "", fmt.ts(created),
                                  fmt.ts(updated), fmt.n(checked_by), fmt.tsn(checked_at)))
        self.fact(created, "prescription.sign", doctor.uid, "prescription", prescription_id, uid,
                  f"{len(medicines)} item(s)")
        if checked_at is not None:
            self.fact(checked_at, "prescription.reject" if status == "rejected" else "prescription.verify",
                      pharmacist, "prescription", prescription_id, uid)
        return dispensed, prescription_id, uid, doctor, pharmacist, items if status.endswith("dispensed") else []

    def _receive(self, medicine: _Medicine, t: int, units: int, pharmacist: int, *, urgent: bool = False) -> None:
        rng, fmt = self.rng, self.fmt
        ordinal = self.day_of(t)
        batch_id = self.new_id("stock_batch")
        lot = f"{date.fromordinal(ordinal).strftime('%y%m%d')}-{medicine.id:03d}-{batch_id}"
        expiry = ordinal + rng.between(540, 1096)
        supplier = rng.one_of(SUPPLIERS)
        cost = max(1, round(medicine.cost * rng.uniform(0.9, 1.1)))
        self.add("stock_batch", (batch_id, medicine.id, lot, fmt.day(expiry), 0, cost, supplier, fmt.ts(t)))
        self._move(batch_id, medicine, "receive", units, f"from {supplier} at {format_money(cost)} a unit"
                   + (" (urgent)" if urgent else ""), None, pharmacist, t)
        self.fact(t, "stock.receive", pharmacist, "stock_batch", batch_id, None, f"{medicine.label} lot {lot} +{units}")
        medicine.lots.append([batch_id, expiry, units, lot])
        medicine.lots.sort(key=lambda lot_: (lot_[1], lot_[0]))
        self.final_stock[batch_id] = units

    def _move(self, batch_id: int, medicine: _Medicine, kind: str, quantity: int, note: str,
              dispensation_id: int | None, actor: int, t: int) -> None:
        self.add("stock_movement", (self.new_id("stock_movement"), batch_id, medicine.id, kind, quantity, note,
                                    self.fmt.n(dispensation_id), actor, self.fmt.ts(t)))

    def _adjust(self, medicine: _Medicine, lot: list, kind: str, change: int, note: str, pharmacist: int,
                t: int) -> None:
        lot[2] += change
        self.final_stock[lot[0]] = lot[2]
        self._move(lot[0], medicine, kind, change, note, None, pharmacist, t)
        self.fact(t, "stock.adjust", pharmacist, "stock_batch", lot[0], None,
                  f"{kind} {change:+d}" + (f": {note}" if note else ""))

    def _pharmacy_round(self, ordinal: int, *, monday: bool) -> None:
        """Monday and Thursday mornings: order stock for the next few days from the wholesaler;
        on Mondays also write off expired lots and book the week's breakages and count corrections."""
        rng = self.rng
        t = self.at(ordinal, 8 * 60)
        pharmacist = rng.one_of(self.pharmacists)
        for options in self.medicines.values():
            for medicine in options:
                for lot in [lot for lot in medicine.lots if monday and lot[1] <= ordinal and lot[2] > 0]:
                    self._adjust(medicine, lot, "expired", -lot[2], "expired lot written off", pharmacist, t)
                medicine.lots = [lot for lot in medicine.lots if lot[2] > 0]
                busy = min(1.0, medicine.forecast / 100) if monday else 0.0  # mishaps come with handling
                if medicine.lots and rng.random() < 0.02 * busy:
                    lot = rng.one_of(medicine.lots)
                    if lot[2] >= 10:
                        self._adjust(medicine, lot, "damaged", -rng.between(1, 5), rng.one_of(DAMAGE_NOTES),
                                     pharmacist, t + 60)
                if medicine.lots and rng.random() < 0.01 * busy:
                    lot = rng.one_of(medicine.lots)
                    change = rng.one_of((-2, -1, 1, 2)) if lot[2] >= 2 else 1
                    self._adjust(medicine, lot, "count_correction", change,
                                 f"shelf count {lot[2] + change}, system said {lot[2]}", pharmacist, t + 120)
                medicine.lots = [lot for lot in medicine.lots if lot[2] > 0]
                medicine.forecast = 0.6 * medicine.forecast + 0.4 * medicine.demand
                medicine.demand = 0
                usable = sum(lot[2] for lot in medicine.lots if lot[1] > ordinal + 14)
                if medicine.forecast > 0 and usable < 1.5 * medicine.forecast:
                    units = math.ceil((2.5 * medicine.forecast - usable) / medicine.pack) * medicine.pack
                    self._receive(medicine, t + 300, units, pharmacist)

    def _dispense(self, ordinal: int, requests: list[tuple]) -> None:
        """Dispense the day's prescriptions in time order, first-expiring usable lot first."""
        for dispensed, prescription_id, uid, doctor, pharmacist, items in requests:
            lines = []
            for item_id, medicine, units in items:
                if units <= 0:
                    continue
                medicine.demand += units
                usable = sum(lot[2] for lot in medicine.lots if lot[1] > ordinal)
                if usable < units:
                    wanted = max(units - usable, round(medicine.forecast))
                    self._receive(medicine, dispensed - 1800, math.ceil(wanted / medicine.pack) * medicine.pack,
                                  pharmacist, urgent=True)
                left = units
                for lot in medicine.lots:
                    if left == 0:
                        break
                    if lot[1] <= ordinal or lot[2] == 0:
                        continue
                    taken = min(left, lot[2])
                    left -= taken
                    lot[2] -= taken
                    self.final_stock[lot[0]] = lot[2]
                    dispensation_id = self.new_id("dispensation")
                    self.add("dispensation", (dispensation_id, prescription_id, item_id, lot[0], taken, medicine.price,
                                              pharmacist, self.fmt.ts(dispensed)))
                    self._move(lot[0], medicine, "dispense", -taken, f"prescription {prescription_id}",
                               dispensation_id, pharmacist, dispensed)
                    self._charge(dispensed, uid, "medicine", "dispensation", dispensation_id,
                                 f"{medicine.label} × {taken}", taken, medicine.price, doctor.department_id)
                    lines.append(f"{taken} × {medicine.label} (lot {lot[3]})")
                medicine.lots = [lot for lot in medicine.lots if lot[2] > 0]
            if lines:
                self.fact(dispensed, "prescription.dispense", pharmacist, "prescription", prescription_id, uid,
                          "; ".join(lines))

    # --- billing -----------------------------------------------------------------------------

    def _charge(self, t: int, uid: int, kind: str, source_type: str, source_id: int, description: str, quantity: int,
                price: int, department_id: int) -> None:
        day = date.fromordinal(self.day_of(t))
        self.charges[(day.year, day.month)].setdefault(uid, []).append(
            (kind, source_type, source_id, description[:200], quantity, price, department_id, t))
        self.lines_made += 1

    def _lines(self, invoice_id: int, charges: list[tuple]) -> int:
        fmt = self.fmt
        subtotal = 0
        for kind, source_type, source_id, description, quantity, price, department_id, t in charges:
            amount = quantity * price
            subtotal += amount
            self.add("invoice_line", (self.new_id("invoice_line"), invoice_id, kind, source_type, source_id,
                                      description, quantity, price, amount, department_id, fmt.ts(t)))
        return subtotal

    def _issue_invoices(self, ordinal: int) -> None:
        """On the first of the month at 07:00 accounts issue last month's invoices, in one run."""
        day = date.fromordinal(ordinal)
        month = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
        issue = self.at(ordinal, 7 * 60)
        if month not in self.charges or issue >= self.now:
            return
        for number, (uid, charges) in enumerate(self.charges.pop(month).items()):
            self._invoice(uid, charges, issue + 3 * number)

    def _invoice(self, uid: int, charges: list[tuple], issued: int) -> None:
        rng, fmt, now = self.rng, self.fmt, self.now
        patient = uid - self.first_patient
        invoice_id = self.new_id("invoice")
        subtotal = self._lines(invoice_id, charges)
        issued_day = date.fromordinal(self.day_of(issued))
        self.invoice_numbers[issued_day.year] += 1
        number = f"INV-{issued_day.year}-{self.invoice_numbers[issued_day.year]:06d}"
        clerk = rng.one_of(self.clerks)
        insurer, policy = self.patient_insurer[patient], self.patient_policy[patient]
        created = min(c[7] for c in charges)
        discount, discount_reason, void_reason = 0, "", ""
        status, claim, claim_note, share = "issued", "none", "", 0
        payments: list[tuple] = []
        u = rng.random()
        if u < 0.02 and subtotal > 0:
            discount = max(1, round(subtotal * rng.uniform(0.05, 0.2)))
            discount_reason = rng.one_of(DISCOUNT_REASONS)
        total = subtotal - discount
        self.fact(issued, "invoice.issue", clerk, "invoice", invoice_id, uid, f"{number} {format_money(total)}")
        if u > 0.99:
            status, void_reason = "void", rng.one_of(VOID_REASONS)
            updated = min(now, issued + rng.between(3600, 5 * _DAY))
            self.fact(updated, "invoice.void", clerk, "invoice", invoice_id, uid, void_reason)
        else:
            updated = issued
            rejected_at = None
            if insurer and total > 0:
                share = total * INSURER_SHARE[insurer] // 100
                submitted = issued + rng.between(_DAY, 4 * _DAY)
                decided = submitted + rng.between(7 * _DAY, 30 * _DAY)
                paid = decided + rng.between(3 * _DAY, 20 * _DAY)
                rejected = rng.random() < 0.05
                for at, to, note in ((submitted, "submitted", ""),
                                     (decided, "rejected" if rejected else "approved",
                                      rng.one_of(CLAIM_REJECTIONS) if rejected else ""),
                                     (paid, "paid", "")):
                    if at > now or (rejected and to == "paid"):
                        break
                    self.fact(at, "invoice.claim", clerk, "invoice", invoice_id, uid,
                              f"{claim} → {to} {note}".strip())
                    claim, claim_note, updated = to, note, at
                    if to == "rejected":
                        rejected_at = at
                    if to == "paid":
                        payments.append((share, "insurance", f"claim {number}", "", None, clerk, at))
            payments += self._patient_payments(uid, invoice_id, number, total - share, share, rejected_at, issued)
            paid_total = sum(p[0] for p in payments)
            if paid_total == total and total > 0 and share == 0 and rng.random() < 0.005:
                refund = max(1, total // 10)  # a goodwill discount after paying in full, refunded in cash
                last = max(p[6] for p in payments)
                when = min(now, last + rng.between(_DAY, 10 * _DAY))
                if when > last:
                    discount, discount_reason = discount + refund, "Goodwill: long wait on the day"
                    total -= refund
                    payments.append((-refund, "cash", "refund", "Goodwill discount refunded", None, clerk, when))
                    self.fact(when, "invoice.discount", clerk, "invoice", invoice_id, uid,
                              f"{format_money(discount)}: {discount_reason}")
                    self.fact(when, "payment.refund", clerk, "invoice", invoice_id, uid,
                              f"{format_money(refund)}: Goodwill discount refunded")
            paid_total = sum(p[0] for p in payments)
            status = "paid" if paid_total >= total else "partly_paid" if paid_total > 0 else "issued"
            if payments:
                updated = max(updated, max(p[6] for p in payments))
        for amount, method, reference, reason, key, by, at in payments:
            self.add("payment", (self.new_id("payment"), invoice_id, amount, method, reference, reason, fmt.n(key),
                                 by, fmt.ts(at)))
        paid_total = sum(p[0] for p in payments)
        self.add("invoice", (invoice_id, number, uid, status, subtotal, discount, discount_reason, total, paid_total,
                             insurer, policy, share, claim, claim_note, void_reason, fmt.ts(created), fmt.ts(updated),
                             fmt.ts(issued), fmt.day(issued_day.toordinal() + PAYMENT_TERMS_DAYS)))

    def _patient_payments(self, uid: int, invoice_id: int, number: str, own: int, share: int,
                          rejected_at: int | None, issued: int) -> list[tuple]:
        """The patient's part: paid soon, late, in two halves, or not at all; the insurer's too once it refused."""
        rng, now = self.rng, self.now
        payments = []
        u = rng.random()
        if own > 0 and u < 0.95:
            delay = (rng.between(0, 28) if u < 0.78 else rng.between(30, 120)) * _DAY + rng.between(32400, 61200)
            halves = [own] if u < 0.88 else [own // 2, own - own // 2]
            at = issued + delay
            for part in halves:
                if part > 0 and at <= now:
                    payments.append(self._payment(uid, invoice_id, number, part, at))
                at += rng.between(14, 60) * _DAY
        if rejected_at is not None and share > 0 and rng.random() < 0.8:
            at = rejected_at + rng.between(2, 30) * _DAY
            if at <= now:
                payments.append(self._payment(uid, invoice_id, number, share, at))
        return payments

    def _payment(self, uid: int, invoice: int, number: str, amount: int, at: int) -> tuple:
        rng = self.rng
        u = rng.random()
        if u < 0.35:  # the patient, online
            reference = f"SIM-{rng.getrandbits(20):05X}{rng.getrandbits(20):05X} card ending {rng.between(10000):04d}"
            key = f"{rng.getrandbits(128):032x}"
            self.fact(at, "invoice.pay_online", uid, "invoice", invoice, uid, f"{format_money(amount)} {reference}")
            return amount, "card", reference, "", key, uid, at
        clerk = rng.one_of(self.clerks)
        method = "card" if u < 0.6 else "cash" if u < 0.75 else "bank_transfer"
        reference = f"BACS {number}" if method == "bank_transfer" else f"receipt {number}"
        self.fact(at, "payment.record", clerk, "invoice", invoice, uid, f"{method} {format_money(amount)} {reference}")
        return amount, method, reference, "", None, clerk, at

    def _draft_invoices(self) -> None:
        """Charges not yet invoiced wait on each patient's one draft."""
        fmt = self.fmt
        pending: dict[int, list[tuple]] = {}
        for month in sorted(self.charges):
            for uid, charges in self.charges[month].items():
                pending.setdefault(uid, []).extend(charges)
        self.charges.clear()
        for uid, charges in pending.items():
            patient = uid - self.first_patient
            invoice_id = self.new_id("invoice")
            subtotal = self._lines(invoice_id, charges)
            first, last = min(c[7] for c in charges), max(c[7] for c in charges)
            self.add("invoice", (invoice_id, fmt.null, uid, "draft", subtotal, 0, "", subtotal, 0,
                                 self.patient_insurer[patient], self.patient_policy[patient], 0, "none", "", "",
                                 fmt.ts(first), fmt.ts(last), fmt.null, fmt.null))

    # --- the audit trail ---------------------------------------------------------------------

    def _audit_until(self, last_day: int) -> None:
        for ordinal in range(self.audited_until + 1, min(last_day, self.today) + 1):
            self._audit_day(ordinal)
        self.audited_until = max(self.audited_until, min(last_day, self.today))

    def _audit_day(self, ordinal: int) -> None:
        rng = self.audit_rng
        wanted = self.audit_on[ordinal - self.first_day]
        facts = self.facts.pop(ordinal, [])
        if len(facts) > wanted:
            facts = rng.sample(facts, wanted)
        elif len(facts) < wanted:
            facts += self._background(ordinal, wanted - len(facts))
        facts.sort()
        fmt, rows, prev = self.fmt, self.buffers["audit_event"], self.last_hash
        next_id = self.next_id["audit_event"]
        for t, _seq, action, actor, entity_type, entity_id, patient, outcome, detail, email in facts:
            if email is None:
                email = self.email_of(actor) if actor is not None else ""
            ip = self.ip_of(t) if actor is None else (
                f"10.20.{actor // 250 % 250}.{actor % 250 + 1}" if actor in self.staff_email else self.ip_of(actor))
            row_hash = audit.chain_digest(prev, fmt.iso_micro(t), actor, email, action, entity_type, entity_id, patient,
                                     ip, outcome, detail)
            rows.append((next_id, fmt.ts(t), fmt.n(actor), email, action, entity_type, entity_id, fmt.n(patient), ip,
                         outcome, detail, prev, row_hash, 0))
            next_id += 1
            prev = row_hash
        self.next_id["audit_event"] = next_id
        self.buffered += len(facts)
        self.last_hash = prev

    def _background(self, ordinal: int, count: int) -> list[tuple]:
        """Logins, logouts, failed logins and look-ups that fill the day's trail."""
        rng = self.audit_rng
        start = self.at(ordinal, 7 * 60)
        end = min(self.at(ordinal, 21 * 60), self.now)
        if end <= start:
            start = self.at(ordinal, 0)
            end = max(start + 1, min(self.at(ordinal, 21 * 60), self.now))
        eligible = bisect.bisect_left(self.patient_registered, start)
        out = []
        for _ in range(count):
            t = rng.between(start, end)
            self.fact_seq += 1
            u = rng.random()
            patient = self.first_patient + rng.between(eligible) if eligible else None
            staff = rng.one_of(self.staff_ids)
            if u < 0.4 or patient is None:
                actor = patient if (u < 0.2 and patient is not None) else staff
                row = ("login.success", actor, "auth_session", "", None, "success", "", None)
            elif u < 0.55:
                actor = patient if u < 0.47 else staff
                row = ("logout", actor, "auth_session", "", None, "success", "", None)
            elif u < 0.58:
                target = patient if u < 0.57 else staff
                row = ("login.failed", None, "user", str(target), None, "failed", "wrong password (1 in a row)",
                       self.email_of(target))
            elif u < 0.75:
                doctor = rng.one_of(self.doctors).uid
                row = ("chart.view", doctor, "patient", str(patient), patient, "success", "", None)
            elif u < 0.85:
                row = ("lab_result.list", patient, "patient", str(patient), None, "success", "page 1", None)
            elif u < 0.93:
                row = ("history.view", patient, "patient", str(patient), patient, "success", "", None)
            elif u < 0.98:
                row = ("pharmacy.queue", rng.one_of(self.pharmacists), "", "", None, "success", "", None)
            else:
                row = ("report.view", rng.one_of(self.admins), "", "", None, "success", "appointments", None)
            action, actor, entity_type, entity_id, patient_id, outcome, detail, email = row
            out.append((t, self.fact_seq, action, actor, entity_type, entity_id, patient_id, outcome, detail, email))
        return out
