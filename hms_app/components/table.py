"""A data table that searches, sorts and pages on the server (``PagedTableState``)."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx


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


def data_table(
    state,
    *,
    caption: str,
    columns: list[tuple[str, str]],
    rows: rx.Var,
    render_row: Callable[[rx.Var], rx.Component],
    empty: str,
    toolbar: rx.Component | None = None,
) -> rx.Component:
    """A paged table over ``rows``.

    Args:
        state: the ``PagedTableState`` subclass that owns the rows.
        caption: what the table lists, for screen readers.
        columns: (sort key, label); an empty key makes a column that does not sort.
        rows: the state var with the current page's rows.
        render_row: turns one row var into a ``rx.table.row``.
        empty: what to say, and what to do, when nothing matches.
        toolbar: search box and filters shown above the table.
    """
    headers = [
        _sort_header(state, key, label) if key else rx.table.column_header_cell(label, scope="col")
        for key, label in columns
    ]
    return rx.vstack(
        toolbar or rx.fragment(),
        rx.cond(
            rows.length() > 0,
            rx.box(
                rx.table.root(
                    rx.el.caption(caption, class_name="visually-hidden"),
                    rx.table.header(rx.table.row(*headers)),
                    rx.table.body(rx.foreach(rows, render_row)),
                    variant="surface",
                    width="100%",
                ),
                width="100%",
                overflow_x="auto",
            ),
            rx.callout(empty, icon="info", color_scheme="gray", width="100%"),
        ),
        pager(state),
        spacing="3",
        width="100%",
    )
