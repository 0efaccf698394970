"""The report figures and their tables: pure functions of the rows the report services return."""

from __future__ import annotations

from hms_app.components import report_figures as figures
from hms_app.components.report_figures import SummaryTable
from hms_app.services.reporting.reports import (
    AppointmentCount,
    DoctorUtilisation,
    LabTurnaround,
    NewPatientsMonth,
    PharmacyPeriod,
)
from tests.components.plotly_json import checked

PERIODS = ["2025-03-29", "2025-03-30", "2025-03-31"]
APPOINTMENTS = [
    AppointmentCount("2025-03-29", "Cardiology", "Completed", 2),
    AppointmentCount("2025-03-29", "Dermatology", "Pending", 1),
    AppointmentCount("2025-03-31", "Cardiology", "Pending", 3),
    AppointmentCount("2025-03-31", "Cardiology", "No-show", 1),
]


def test_labels_of_periods_and_durations():
    assert figures.period_label("2025-03-09") == "9 Mar 2025"
    assert figures.period_label("2025-03") == "Mar 2025"
    assert [figures.duration_label(m) for m in (0, 25.4, 60, 77.6, 2879, 2880, 3000)] == [
        "0 min", "25 min", "1 h", "1 h 18 min", "47 h 59 min", "2 d", "2 d 2 h"]


def test_appointments_over_time_stack_one_bar_per_status_on_every_period():
    figure = checked(figures.appointments_over_time_figure(APPOINTMENTS, PERIODS, "day"))
    assert [t.name for t in figure.data] == ["Pending", "Completed", "No-show"]  # the workflow's order
    assert [list(t.y) for t in figure.data] == [[1, 0, 3], [2, 0, 0], [0, 0, 1]]
    assert list(figure.data[0].x) == ["29 Mar 2025", "30 Mar 2025", "31 Mar 2025"]
    assert figure.layout.barmode == "stack"
    assert figure.layout.title.text == "Appointments per day, by status"
    assert figure.layout.yaxis.dtick == 1  # no half appointments on the axis


def test_appointments_by_department_add_up_over_the_range():
    figure = checked(figures.appointments_by_department_figure(APPOINTMENTS))
    assert list(figure.data[0].y) == ["Dermatology", "Cardiology"]  # drawn bottom-up: Cardiology on top
    assert {t.name: list(t.x) for t in figure.data} == {"Pending": [1, 3], "Completed": [0, 2], "No-show": [0, 1]}


def test_the_appointments_table_has_totals_per_department_and_status():
    assert figures.appointments_table(APPOINTMENTS) == SummaryTable(
        "Appointments per department and status in the range",
        ["Department", "Pending", "Completed", "No-show", "Total"],
        [["Cardiology", "3", "2", "1", "6"], ["Dermatology", "1", "0", "0", "1"],
         ["All departments", "4", "2", "1", "7"]],
    )


def test_utilisation_says_when_a_booking_rounds_to_nothing_and_when_there_were_no_slots():
    rows = [DoctorUtilisation("Dr. A", "Cardiology", 89, 3, 3.4), DoctorUtilisation("Dr. B", "Cardiology", 2919, 1, 0.0),
            DoctorUtilisation("Dr. C", "Dermatology", 105, 0, 0.0), DoctorUtilisation("Dr. D", "Orthopedics", 0, 1, None)]
    figure = checked(figures.utilisation_figure(rows))
    assert list(figure.data[0].text) == ["no slots · 1 booked", "0% · 0 of 105", "under 0.1% · 1 of 2919",
                                         "3.4% · 3 of 89"]
    assert [r[-1] for r in figures.utilisation_table(rows).rows] == ["3.4%", "under 0.1%", "0%", "no slots"]


def test_lab_turnaround_is_charted_in_hours_per_priority():
    rows = [LabTurnaround("HGB", "Haemoglobin", "Stat", 1, 25.0, 25.0),
            LabTurnaround("K", "Potassium", "Urgent", 2, 130.5, 131.0),
            LabTurnaround("HGB", "Haemoglobin", "Routine", 2, 90.0, 95.0)]
    figure = checked(figures.lab_turnaround_figure(rows))
    assert [(t.name, list(t.y), list(t.x)) for t in figure.data] == [
        ("Stat", ["Haemoglobin"], [25 / 60]), ("Urgent", ["Potassium"], [130.5 / 60]), ("Routine", ["Haemoglobin"], [1.5])]
    assert figures.lab_turnaround_table(rows).rows[1] == ["Potassium (K)", "Urgent", "2", "2 h 10 min", "2 h 11 min"]


def test_pharmacy_bars_units_and_lines_the_stock_value_in_money_on_its_own_axis():
    rows = [PharmacyPeriod("2025-03-29", 0, 0, 0, 4000), PharmacyPeriod("2025-03-30", 2, 13, 3250, 123456)]
    figure = checked(figures.pharmacy_figure(rows, "day"))
    bars, line = figure.data
    assert (list(bars.y), list(line.y), line.yaxis) == ([0, 13], [40.0, 1234.56], "y2")
    assert figures.pharmacy_table(rows).rows == [
        ["Dispensations", "2"], ["Units dispensed", "13"], ["Value dispensed (at price)", "£32.50"],
        ["Stock value at cost, end of 29 Mar 2025", "£40.00"], ["Stock value at cost, end of 30 Mar 2025", "£1,234.56"]]


def test_new_patients_per_month_with_a_total():
    rows = [NewPatientsMonth("2025-02", 0), NewPatientsMonth("2025-03", 4)]
    figure = checked(figures.new_patients_figure(rows))
    assert list(figure.data[0].y) == [0, 4]
    assert list(figure.data[0].text) == ["0", "4"]
    assert figures.new_patients_table(rows).rows == [["Feb 2025", "0"], ["Mar 2025", "4"], ["All months", "4"]]


def test_an_empty_report_is_a_titled_chart_that_says_so_and_an_empty_table():
    for built in (figures.appointments_over_time_figure([], PERIODS, "day"), figures.utilisation_figure([]),
                   figures.lab_turnaround_figure([]), figures.new_patients_figure([NewPatientsMonth("2025-03", 0)]),
                   figures.pharmacy_figure([PharmacyPeriod("2025-03-29", 0, 0, 0, 0)], "day")):
        figure = checked(built)
        assert figure.data == ()
        assert figure.layout.xaxis.visible is False
        assert figure.layout.title.text
        assert figure.layout.annotations[0].text.startswith("No ")
    assert figures.appointments_table([]).empty
    assert figures.new_patients_table([NewPatientsMonth("2025-03", 0)]).empty
    assert figures.pharmacy_table([PharmacyPeriod("2025-03-29", 0, 0, 0, 0)]).empty
    assert not figures.pharmacy_table([PharmacyPeriod("2025-03-29", 0, 0, 0, 1)]).empty
