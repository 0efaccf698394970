"""FHIR import at scale: resources per second and peak memory, at N patients and at N/10.

Writes Synthea-shaped transaction Bundles, one per patient of about 100 resources (the suite's
own generator, ``tests/fhir_bundles.py``, one patient in memory at a time), into a temporary
folder, then imports the folder into a fresh, migrated SQLite database holding the demo
hospital, in a child process of its own whose peak resident memory (``ru_maxrss``) is the
import's. The baseline is the same import of a tenth of the patients in the same run: bounded
memory means the peak at N stays near the peak at N/10 (ratio near 1), and a rate that holds
means resources per second at N near that at N/10. The elapsed rate depends on what else the
machine runs; the rate per CPU second of the import's own process does not, so its ratio says
whether the import itself slows as the database grows. Everything it writes (the source, the
database, the stored documents, the staging file) is under one temporary folder, removed at the
end; 10,000 patients need about 0.8 GB for the source and a few GB for the rest.

    nice -n 10 .venv/bin/python -m bench.fhir_import --patients 10000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from bench.harness import machine_note, table

ENCOUNTERS = 5
"""Encounters per patient: 1 + 2 + 5 x 19 = 98 resources per patient."""


def _generate(folder: Path, patients: int) -> int:
    from tests import fhir_bundles

    for _ in fhir_bundles.write_patient_files(folder, patients, encounters=ENCOUNTERS):
        pass
    return sum(p.stat().st_size for p in folder.iterdir())


def _rss_mb() -> float:
    """The process's resident memory now (``ru_maxrss`` is only its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds() -> float:
    """The process's own processor time: unlike the elapsed time, other work on the machine leaves it alone."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _import(folder: str, out: str, scratch: str) -> None:
    """The child: a fresh database, then the import; writes its figures as JSON to ``out``.

    Its database, stored documents and the import's staging file all go under ``scratch``,
    which the parent removes as soon as the child ends."""
    tempfile.tempdir = scratch
    os.environ["TMPDIR"] = scratch
    os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-bench-fhir-data-"))
    os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")
    from bench.harness import demo_sqlite
    from hms_app.db.engine import session_scope
    from hms_app.db.enums import DEFAULT_ROLE_PERMISSIONS, Role
    from hms_app.db.models import User
    from hms_app.services.core.actor import Actor
    from hms_app.services.golive.fhir_import import import_fhir

    engine = demo_sqlite("hms-bench-fhir-", billing_history=False)
    with session_scope(engine=engine, write=False) as session:
        admin = session.query(User).filter(User.role == Role.ADMIN.value).first()
        actor = Actor(user_id=admin.id, role=Role.ADMIN, email=admin.email, full_name=admin.full_name,
                      permissions=frozenset(p.value for p in DEFAULT_ROLE_PERMISSIONS[Role.ADMIN]))
    before = _rss_mb()
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    shown = [0]

    def progress(done: int, total: int | None) -> None:
        if total is not None and done - shown[0] >= 50_000:
            shown[0] = done
            seconds = time.perf_counter() - started
            cpu = _cpu_seconds() - cpu_started
            print(f"#   {done}/{total} resources in {seconds:.0f} s ({done / seconds:.0f}/s; {cpu:.0f} CPU s, "
                  f"{done / cpu:.0f}/CPU s), RSS {_rss_mb():.0f} MB", flush=True)

    report = import_fhir(engine=engine, actor=actor, path=Path(folder), progress=progress)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = report.created + report.updated + report.unchanged + report.skipped + report.failed
    Path(out).write_text(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "resources": total, "created": report.created,
                                     "failed": report.failed, "peak_mb": peak / 1024, "before_mb": before,
                                     "message": report.message}))


def measure(patients: int, work: Path) -> dict:
    folder = work / f"source-{patients}"
    folder.mkdir()
    started = time.perf_counter()
    size = _generate(folder, patients)
    generated = time.perf_counter() - started
    out = work / f"result-{patients}.json"
    scratch = work / f"scratch-{patients}"
    scratch.mkdir()
    print(f"# {patients} patients: {size / 2**20:.0f} MB written in {generated:.0f} s; importing", flush=True)
    child = multiprocessing.get_context("spawn").Process(target=_import, args=(str(folder), str(out), str(scratch)))
    child.start()
    child.join()
    shutil.rmtree(folder)
    shutil.rmtree(scratch)
    result = json.loads(out.read_text())
    result |= {"patients": patients, "source_mb": size / 2**20, "generate_seconds": generated}
    print(f"# {patients} patients: {result['message']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    args = parser.parse_args()
    baseline = max(1, args.patients // 10)
    with tempfile.TemporaryDirectory(prefix="hms-bench-fhir-") as work:
        results = [measure(n, Path(work)) for n in (baseline, args.patients)]
    rows = [(r["patients"], r["resources"], f"{r['source_mb']:.0f}", f"{r['seconds']:.0f}",
             f"{r['resources'] / r['seconds']:.0f}", f"{r['cpu_seconds']:.0f}",
             f"{r['resources'] / r['cpu_seconds']:.0f}", f"{r['peak_mb']:.0f}", f"{r['before_mb']:.0f}", r["failed"])
            for r in results]
    print(table(("patients", "resources", "source MB", "import s", "resources/s", "CPU s", "resources/CPU s",
                 "peak RSS MB", "RSS before import MB", "failed"), rows))
    small, large = results
    print(f"\npeak memory at {large['patients']} / at {small['patients']}: {large['peak_mb'] / small['peak_mb']:.2f}; "
          f"rate at {large['patients']} / at {small['patients']}: "
          f"{(large['resources'] / large['seconds']) / (small['resources'] / small['seconds']):.2f} elapsed, "
          f"{(large['resources'] / large['cpu_seconds']) / (small['resources'] / small['cpu_seconds']):.2f} per CPU second")
    print(machine_note())


if __name__ == "__main__":
    main()
