"""A data table that searches, sorts and pages on the server (``PagedTableState``).

On a narrow screen every table of the app shows its rows as cards: ``label_table_cells`` gives
each cell its column's header as ``data-label`` (and the table the ``card-table`` class), and
``assets/hms.css`` lays the rows out as cards with those labels. ``page_shell`` applies it to
every table of a page, so tables built outside ``data_table`` get it too.

The functions here take their labels (headers, captions, placeholders, what an empty table says)
as plain English texts, which they show in the reader's language, or as vars already translated
(``components.forms.shown``). Ids derived from a label are derived from the English text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import reflex as rx
from reflex.vars.base import Var
from reflex_base.components.component import Component
from reflex_components_core.base.bare import Bare
from reflex_components_core.core.foreach import Foreach
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

from hms_app.components.i18n import shown, t

_CELLS = (TableCell, TableRowHeaderCell)


def _pieces(component: Component) -> Iterator[str | Var]:
    if isinstance(component, Bare):
        value = getattr(component.contents, "_var_value", None)
        if isinstance(value, str):
            yield value
        elif isinstance(component.contents, Var) and component.contents._var_type is str:
            yield component.contents  # a translated text, t("…")
        return
    for child in component.children:
        yield from _pieces(child)


def _text_of(component: Component) -> str | Var:
    """The text inside ``component``: a plain string when it is literal, else a string var (a
    header written ``t("When")`` reads in the reader's language, so its label does too)."""
    pieces = list(_pieces(component))
    if all(isinstance(piece, str) for piece in pieces):
        return "".join(pieces).strip()
    texts = [piece for piece in pieces if not (isinstance(piece, str) and not piece.strip())]
    text = texts[0]
    for piece in texts[1:]:
        text = text + piece
    return text


def _blank(label: str | Var) -> bool:
    return isinstance(label, str) and not label


def _find(component: Component, kind: type | tuple[type, ...], *, into_tables: bool = False) -> Iterator[Component]:
    """The outermost descendants of ``component`` of ``kind`` (not looking inside nested tables)."""
    for child in component.children:
        if isinstance(child, kind):
            yield child
        elif into_tables or not isinstance(child, TableRoot):
            yield from _find(child, kind, into_tables=into_tables)


def _label_table(table: Component) -> None:
    # Headers from a foreach (columns known only in the browser) give no labels, and each keeps the
    # loop's text.
    looped = any(True for header in _find(table, TableHeader) for _loop in _find(header, Foreach))
    headers = [] if looped else [cell for header in _find(table, TableHeader) for row in _find(header, TableRow)
                                 for cell in _find(row, TableColumnHeaderCell)]
    if not headers and not looped:
        return
    labels = [_text_of(cell) for cell in headers]
    for cell, label in zip(headers, labels, strict=True):
        if _blank(label) and all(isinstance(child, Bare) for child in cell.children):
            # A column of buttons or links has no visible title, but its header still names it.
            cell.children = [rx.el.span(t("Actions"), class_name="visually-hidden")]
    for body in _find(table, TableBody):
        for row in _find(body, TableRow):
            # Each child of a row is one column: a cell, or a cond/fragment that renders one.
            for label, child in zip(labels, row.children, strict=False):
                cells = [child] if isinstance(child, _CELLS) else list(_find(child, _CELLS))
                for cell in cells:
                    if not _blank(label):
                        cell.custom_attrs["data-label"] = label
    # A table that scrolls sideways (at a desk, when it is wider than the page) can be reached
    # and scrolled by keyboard: it is a named region in the tab order.
    caption = next((_text_of(c) for c in _find(table, Caption)), "")
    if table.class_name is None or isinstance(table.class_name, str):
        table.class_name = f"{table.class_name or ''} card-table".strip()
    table.custom_attrs.setdefault("tabIndex", 0)
    table.custom_attrs.setdefault("role", "region")
    if _blank(caption):
        caption = t("{column} table", column=labels[0]) if labels and not _blank(labels[0]) else t("Table")
    table.custom_attrs.setdefault("aria-label", caption)


def label_table_cells(component: Component) -> Component:
    """Label every table cell under ``component`` with its column header, for the narrow-screen
    cards, and make each table a keyboard-reachable region; returns ``component``."""
    if isinstance(component, TableRoot):
        _label_table(component)
    for table in _find(component, TableRoot, into_tables=True):
        _label_table(table)
    return component


def _sort_header(state, key: str, label: str | Var) -> rx.Component:
    active = state.sort == key
    return rx.table.column_header_cell(
        rx.el.button(
            shown(label),
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


def search_box(state, label: str | Var, placeholder: str | Var = "", *, element_id: str = "") -> rx.Component:
    """The search above a table; its input's id is ``element_id``, or made from the English ``label``."""
    input_id = element_id or f"search-{_english(label, 'search_box needs element_id').lower().replace(' ', '-')}"
    return rx.vstack(
        rx.el.label(shown(label), html_for=input_id, font_weight="500", font_size="0.9rem"),
        rx.input(
            rx.input.slot(rx.icon("search", size=16, aria_hidden="true")),
            id=input_id,
            type="search",
            value=state.search,
            on_change=state.search_rows.debounce(300),
            placeholder=shown(placeholder),
            width=rx.breakpoints(initial="100%", sm="20rem"),
        ),
        spacing="1",
    )


def pager(state) -> rx.Component:
    return rx.hstack(
        rx.text(t("{total} in all · page {page} of {pages}", total=state.total, page=state.page,
                  pages=state.page_count), size="2", color="var(--gray-11)", aria_live="polite"),
        rx.spacer(),
        rx.button(t("Previous"), on_click=state.previous_page, disabled=state.page <= 1, variant="soft",
                  aria_label=t("Previous page")),
        rx.button(t("Next"), on_click=state.next_page, disabled=state.page >= state.page_count, variant="soft",
                  aria_label=t("Next page")),
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
        rx.text(rx.cond(size_note != "", t("Page {page} · {size}", page=state.page, size=size_note),
                        t("Page {page}", page=state.page)),
                size="2", color="var(--gray-11)", aria_live="polite"),
        rx.spacer(),
        rx.button(t("Newer"), on_click=state.previous_page, disabled=~state.has_newer, variant="soft",
                  aria_label=t("Newer page")),
        rx.button(t("Older"), on_click=state.next_page, disabled=~state.has_older, variant="soft",
                  aria_label=t("Older page")),
        width="100%",
        align="center",
        wrap="wrap",
    )


def _english(label: str | Var, need: str) -> str:
    """``label`` itself, for an id made from it; a translated var has no one spelling to make it from."""
    if not isinstance(label, str):
        raise TypeError(f"{need}: its label is a var, so no id can be made from it")  # i18n: not shown
    return label


def _header(state, key: str, label: str | Var) -> rx.Component:
    return _sort_header(state, key, label) if key else rx.table.column_header_cell(shown(label), scope="col")


def sort_control(state, columns: list[tuple[str, str | Var]], control_id: str) -> rx.Component:
    """Sorting for narrow screens, where the rows are cards and the headers are hidden."""
    sortable = [(key, label) for key, label in columns if key]
    return rx.hstack(
        rx.vstack(
            rx.el.label(t("Sort by"), html_for=control_id, font_weight="500", font_size="0.9rem"),
            rx.el.select(
                rx.el.option(t("As listed"), value="", disabled=True),
                *[rx.el.option(shown(label), value=key) for key, label in sortable],
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
            rx.cond(state.descending, t("Descending"), t("Ascending")),
            on_click=state.sort_rows(state.sort),
            disabled=state.sort == "",
            variant="soft",
            color_scheme="gray",
            aria_label=rx.cond(state.descending, t("Sorted descending: sort ascending"),
                               t("Sorted ascending: sort descending")),
        ),
        align="end",
        spacing="2",
        class_name="narrow-only",
    )


def data_table(
    state,
    *,
    caption: str | Var,
    columns: list[tuple[str, str | Var]],
    rows: rx.Var,
    render_row: Callable[[rx.Var], rx.Component],
    empty: str | Var,
    toolbar: rx.Component | None = None,
    paging: rx.Component | None = None,
    table_id: str = "",
) -> rx.Component:
    """A paged table over ``rows``; on a narrow screen its rows are cards (``label_table_cells``)
    and a sort control stands in for the sorting headers.

    Args:
        state: the ``PagedTableState`` subclass that owns the rows.
        caption: what the table lists, for screen readers (English, ``N_("…")``, or a ``t("…")`` var).
        columns: (sort key, label); an empty key makes a column that does not sort, an empty
            label a column of actions (its header is read, not shown). Labels as ``caption``.
        rows: the state var with the current page's rows.
        render_row: turns one row var into a ``rx.table.row``.
        empty: what to say, and what to do, when nothing matches.
        toolbar: search box and filters shown above the table.
        paging: the controls under the table; ``pager(state)`` (pages of a counted total) unless given.
        table_id: names the narrow screens' sort control (``sort-<table_id>``); made from the
            English caption unless given (and needed when the caption is a var).
    """
    table = label_table_cells(rx.table.root(
        rx.el.caption(shown(caption), class_name="visually-hidden"),
        rx.table.header(rx.table.row(*[_header(state, key, label) for key, label in columns])),
        rx.table.body(rx.foreach(rows, render_row)),
        variant="surface",
        width="100%",
    ))
    if any(key for key, _label in columns):
        name = table_id or re.sub(r"[^a-z0-9]+", "-", _english(caption, "data_table needs table_id").lower())
        sorting = sort_control(state, columns, "sort-" + name[:40].strip("-"))
    else:
        sorting = rx.fragment()
    return rx.vstack(
        toolbar or rx.fragment(),
        rx.cond(
            rows.length() > 0,
            rx.box(sorting, table, width="100%"),
            rx.callout(shown(empty), icon="info", color_scheme="gray", width="100%"),
        ),
        paging if paging is not None else pager(state),
        spacing="3",
        width="100%",
    )
