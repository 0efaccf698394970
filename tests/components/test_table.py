"""Table cells labelled by their column headers, for the phone's cards (``label_table_cells``)."""

from __future__ import annotations

import reflex as rx

from hms_app.components.layout import page_shell
from hms_app.components.table import label_table_cells


def _table(headers: list, render) -> rx.Component:
    return rx.table.root(
        rx.el.caption("Visits", class_name="visually-hidden"),
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in headers])),
        rx.table.body(rx.foreach(rx.Var.create([1, 2]), render)),
    )


def _rendered(component: rx.Component) -> str:
    return str(component.render())


def test_each_cell_is_labelled_by_its_column_even_inside_a_cond():
    table = _table(["When", "Status", ""], lambda r: rx.table.row(
        rx.table.row_header_cell(r), rx.cond(r > 1, rx.table.cell("done"), rx.table.cell("open")),
        rx.table.cell(rx.button("Cancel"))))
    text = _rendered(label_table_cells(rx.box(table)))
    assert text.count('"data-label":"When"') == 1
    assert text.count('"data-label":"Status"') == 2  # both branches of the cond
    assert '"data-label":""' not in text


def test_an_unnamed_column_is_named_for_screen_readers():
    table = label_table_cells(_table(["When", ""], lambda r: rx.table.row(rx.table.cell(r), rx.table.cell("x"))))
    assert '"Actions"' in _rendered(table)


def test_a_table_is_a_named_keyboard_reachable_region():
    table = label_table_cells(_table(["When"], lambda r: rx.table.row(rx.table.cell(r))))
    props = table.render()["props"]
    assert 'className:"card-table"' in props
    assert "tabIndex:0" in props
    assert 'role:"region"' in props
    assert '"aria-label":"Visits"' in props


def test_every_table_of_a_page_is_labelled():
    page = page_shell("Visits", rx.vstack(rx.card(_table(["When"], lambda r: rx.table.row(rx.table.cell(r))))))
    assert '"data-label":"When"' in _rendered(page)
