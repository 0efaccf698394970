"""Lab reports kept under names that once broke their download, for ``test_file_names.py``.

Run as ``python -m tests.e2e.file_name_seed`` in the environment of a running app server
(``HMS_DATA_DIR`` pointing at its data folder, so that the files are encrypted with the server's
key). It makes three completed lab orders for a demo patient and attaches a stored PDF to them under the names
``報告.pdf`` and ``report\\n.pdf`` (as a version that checked names with ``re.match`` kept them)
and a third whose file is then removed from storage, issues an API token that reads every
record, and prints one JSON object: the token and the orders by name.
"""

from __future__ import annotations

import hashlib
import json
import secrets

import sqlalchemy as sa

from hms_app.db.engine import get_engine, session_scope
from hms_app.db.enums import LabOrderStatus, Role
from hms_app.db.models import ApiClient, LabOrder, LabReportFile, LabTest, User
from hms_app.services.core import files

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
NAMES = ("報告.pdf", "report\n.pdf", "missing.pdf")


def seed() -> dict[str, object]:
    token = f"hms_{secrets.token_urlsafe(32)}"
    with session_scope(engine=get_engine()) as s:
        lab = s.execute(sa.select(User.id).where(User.role == Role.LAB).limit(1)).scalar_one()
        doctor = s.execute(sa.select(User.id).where(User.role == Role.DOCTOR).limit(1)).scalar_one()
        patient = s.execute(sa.select(User.id).where(User.role == Role.PATIENT).limit(1)).scalar_one()
        test = s.execute(sa.select(LabTest.id).limit(1)).scalar_one()
        orders = []
        for _ in NAMES:
            order = LabOrder(patient_id=patient, doctor_id=doctor, test_id=test, status=LabOrderStatus.COMPLETED)
            s.add(order)
            s.flush()
            orders.append(order.id)
        by_name = {}
        for order_id, name in zip(orders, NAMES, strict=True):
            storage_name = files.store_encrypted(PDF)
            s.add(LabReportFile(order_id=order_id, storage_name=storage_name, file_name=name,
                                content_type="application/pdf", size_bytes=len(PDF), uploaded_by=lab))
            if name == "missing.pdf":
                files.remove_stored(storage_name)
            by_name[name] = order_id
        admin = s.execute(sa.select(User.id).where(User.role == Role.ADMIN).limit(1)).scalar_one()
        s.add(ApiClient(name="File name check", token_hash=hashlib.sha256(token.encode()).hexdigest(),
                        token_hint=token[:10], scope="all", created_by=admin))
        s.commit()
    return {"token": token, "orders": by_name}


def seed_on(app_server) -> dict[str, object]:
    """Run this module against a running test server (``tests/e2e/server.py``); its output."""
    import subprocess
    import sys

    from tests.e2e.server import ROOT, server_env

    done = subprocess.run([sys.executable, "-m", "tests.e2e.file_name_seed"],
                          env=server_env(app_server.data_dir, app_server.port), cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, f"the seed failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


if __name__ == "__main__":
    print(json.dumps(seed()))
