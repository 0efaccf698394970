"""A data table that searches, sorts and pages on the server (``PagedTableState``).

On a narrow screen every table of the app shows its rows as cards: ``label_table_cells`` gives
each cell its column's header as ``data-label`` (and the table the ``card-table`` class), and
``assets/hms.css`` lays the rows out as cards with those labels. ``page_shell`` applies it to
every table of a page, so tables built outside ``data_table`` get it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import reflex as rx
from reflex_base.components.component import Component
from reflex_components_core.base.bare import Bare
from reflex_components_core.el.elements.tables import Caption
from reflex_components_radix.themes.components.table import (
    TableBody,
    TableCell,
    TableColumnHeaderCell,
    TableHeader,
    TableRoot,
    TableRow,
    TableRowHeaderCell,
)

_CELLS = (TableCell, TableRowHeaderCell)


def _text_of(component: Component) -> str:
    """The literal text inside ``component`` (headers and captions are plain strings here)."""
    if isinstance(component, Bare):
        value = getattr(component.contents, "_var_value", None)
        return value if isinstance(value, str) else ""
    return "".join(_text_of(child) for child in component.children)


def _find(component: Component, kind: type | tuple[type, ...], *, into_tables: bool = False) -> Iterator[Component]:
    """The outermost descendants of ``component`` of ``kind`` (not looking inside nested tables)."""
    for child in component.children:
        if isinstance(child, kind):
            yield child
        elif into_tables or not isinstance(child, TableRoot):
            yield from _find(child, kind, into_tables=into_tables)


def _label_table(table: Component) -> None:
    headers = [cell for header in _find(table, TableHeader) for row in _find(header, TableRow)
               for cell in _find(row, TableColumnHeaderCell)]
    if not headers:
        return  # headers from a foreach (columns known only in the browser): no labels to give
    labels = [_text_of(cell).strip() for cell in headers]
    for cell, label in zip(headers, labels, strict=True):
        if not label and all(isinstance(child, Bare) for child in cell.children):
            # A column of buttons or links has no visible title, but its header still names it.
            cell.children = [rx.el.span("Actions", class_name="visually-hidden")]
    for body in _find(table, TableBody):
        for row in _find(body, TableRow):
            # Each child of a row is one column: a cell, or a cond/fragment that renders one.
            for label, child in zip(labels, row.children, strict=False):
                cells = [child] if isinstance(child, _CELLS) else list(_find(child, _CELLS))
                for cell in cells:
                    if label:
                        cell.custom_attrs["data-label"] = label
    # A table that scrolls sideways (at a desk, when it is wider than the page) can be reached
    # and scrolled by keyboard: it is a named region in the tab order.
    caption = next((_text_of(c).strip() for c in _find(table, Caption)), "")
    if table.class_name is None or isinstance(table.class_name, str):
        table.class_name = f"{table.class_name or ''} card-table".strip()
    table.custom_attrs.setdefault("tabIndex", 0)
    table.custom_attrs.setdefault("role", "region")
    table.custom_attrs.setdefault("aria-label", caption or (labels[0] + " table" if labels[0] else "Table"))


def label_table_cells(component: Component) -> Component:
    """Label every table cell under ``component`` with its column header, for the narrow-screen
    cards, and make each table a keyboard-reachable region; returns ``component``."""
    if isinstance(component, TableRoot):
        _label_table(component)
    for table in _find(component, TableRoot, into_tables=True):
        _label_table(table)
    return component


def _sort_header(state, key: str, label: str) -> rx.Component:
    active = state.sort == key
    return rx.table.column_header_cell(
        rx.el.button(
            label,
            rx.cond(
                active,
                rx.cond(state.descending, rx.icon("arrow-down", size=14, aria_hidden="true"),
                        rx.icon("arrow-up", size=14, aria_hidden="true")),
                rx.icon("arrow-up-down", size=14, aria_hidden="true", color="var(--gray-10)"),
            ),
            on_click=state.sort_rows(key),
            class_name="sort-button",
            type="button",
        ),
        aria_sort=rx.cond(active, rx.cond(state.descending, "descending", "ascending"), "none"),
        scope="col",
    )


def search_box(state, label: str, placeholder: str = "") -> rx.Component:
    input_id = f"search-{label.lower().replace(' ', '-')}"
    return rx.vstack(
        rx.el.label(label, html_for=input_id, font_weight="500", font_size="0.9rem"),
        rx.input(
            rx.input.slot(rx.icon("search", size=16, aria_hidden="true")),
            id=input_id,
            type="search",
            value=state.search,
            on_change=state.search_rows.debounce(300),
            placeholder=placeholder,
            width=rx.breakpoints(initial="100%", sm="20rem"),
        ),
        spacing="1",
    )


def pager(state) -> rx.Component:
    return rx.hstack(
        rx.text(state.total.to_string() + " in all · page " + state.page.to_string() + " of "
                + state.page_count.to_string(), size="2", color="var(--gray-11)", aria_live="polite"),
        rx.spacer(),
        rx.button("Previous", on_click=state.previous_page, disabled=state.page <= 1, variant="soft",
                  aria_label="Previous page"),
        rx.button("Next", on_click=state.next_page, disabled=state.page >= state.page_count, variant="soft",
                  aria_label="Next page"),
        width="100%",
        align="center",
        wrap="wrap",
    )


def keyset_pager(state, size_note: rx.Var) -> rx.Component:
    """Newer and older pages of a table paged by id, which knows its neighbours but not its total:
    ``state`` has ``page``, ``has_newer``, ``has_older``, ``previous_page`` and ``next_page``;
    ``size_note`` (a text var, may be empty) says what is known of the whole, labelled as what it
    is (an estimate, a bound)."""
    return rx.hstack(
        rx.text("Page " + state.page.to_string() + rx.cond(size_note != "", " · " + size_note, ""),
                size="2", color="var(--gray-11)", aria_live="polite"),
        rx.spacer(),
        rx.button("Newer", on_click=state.previous_page, disabled=~state.has_newer, variant="soft",
                  aria_label="Newer page"),
        rx.button("Older", on_click=state.next_page, disabled=~state.has_older, variant="soft",
                  aria_label="Older page"),
        width="100%",
        align="center",
        wrap="wrap",
    )


def _header(state, key: str, label: str) -> rx.Component:
    return _sort_header(state, key, label) if key else rx.table.column_header_cell(label, scope="col")


def sort_control(state, columns: list[tuple[str, str]], control_id: str) -> rx.Component:
    """Sorting for narrow screens, where the rows are cards and the headers are hidden."""
    sortable = [(key, label) for key, label in columns if key]
    return rx.hstack(
        rx.vstack(
            rx.el.label("Sort by", html_for=control_id, font_weight="500", font_size="0.9rem"),
            rx.el.select(
                rx.el.option("As listed", value="", disabled=True),
                *[rx.el.option(label, value=key) for key, label in sortable],
                id=control_id,
                value=state.sort,
                on_change=state.sort_rows,
                class_name="native-select",
            ),
            spacing="1",
        ),
        rx.button(
            rx.cond(state.descending, rx.icon("arrow-down", size=14, aria_hidden="true"),
                    rx.icon("arrow-up", size=14, aria_hidden="true")),
            rx.cond(state.descending, "Descending", "Ascending"),
            on_click=state.sort_rows(state.sort),
            disabled=state.sort == "",
            variant="soft",
            color_scheme="gray",
            aria_label=rx.cond(state.descending, "Sorted descending: sort ascending",
                               "Sorted ascending: sort descending"),
        ),
        align="end",
        spacing="2",
        class_name="narrow-only",
    )


def data_table(
    state,
    *,
    caption: str,
    columns: list[tuple[str, str]],
    rows: rx.Var,
    render_row: Callable[[rx.Var], rx.Component],
    empty: str,
    toolbar: rx.Component | None = None,
    paging: rx.Component | None = None,
) -> rx.Component:
    """A paged table over ``rows``; on a narrow screen its rows are cards (``label_table_cells``)
    and a sort control stands in for the sorting headers.

    Args:
        state: the ``PagedTableState`` subclass that owns the rows.
        caption: what the table lists, for screen readers.
        columns: (sort key, label); an empty key makes a column that does not sort, an empty
            label a column of actions (its header is read, not shown).
        rows: the state var with the current page's rows.
        render_row: turns one row var into a ``rx.table.row``.
        empty: what to say, and what to do, when nothing matches.
        toolbar: search box and filters shown above the table.
        paging: the controls under the table; ``pager(state)`` (pages of a counted total) unless given.
    """
    table = label_table_cells(rx.table.root(
        rx.el.caption(caption, class_name="visually-hidden"),
        rx.table.header(rx.table.row(*[_header(state, key, label) for key, label in columns])),
        rx.table.body(rx.foreach(rows, render_row)),
        variant="surface",
        width="100%",
    ))
    sorting = (sort_control(state, columns, "sort-" + re.sub(r"[^a-z0-9]+", "-", caption.lower())[:40].strip("-"))
               if any(key for key, _ in columns) else rx.fragment())
    return rx.vstack(
        toolbar or rx.fragment(),
        rx.cond(
            rows.length() > 0,
            rx.box(sorting, table, width="100%"),
            rx.callout(empty, icon="info", color_scheme="gray", width="100%"),
        ),
        paging if paging is not None else pager(state),
        spacing="3",
        width="100%",
    )
