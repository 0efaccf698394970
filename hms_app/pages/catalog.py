"""The reference lists: the lab catalog (/lab/catalog) and the price list (/accounts/prices)."""

from __future__ import annotations

import reflex as rx

from hms_app.components.badges import status_badge
from hms_app.components.dialogs import dialog, form_buttons
from hms_app.components.forms import field, filter_select, form_error, select_field
from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table, search_box
from hms_app.services.accounting.prices import KIND_LABELS, PriceRow
from hms_app.services.core.language import N_
from hms_app.services.laboratory.catalog import RELEASE_RULES, SEXES, BandRow, LabTestRow
from hms_app.state.catalog import ADDING, LabCatalogState, PricesState

_MUTED = "var(--gray-11)"
_SEX_LABELS = {"any": N_("Either"), "female": N_("Female"), "male": N_("Male")}
"""A reference range's sex (``SEXES``) in words."""


# --- the lab catalog ------------------------------------------------------------------------------


def _test_row(test: LabTestRow) -> rx.Component:
    s = LabCatalogState
    return rx.table.row(
        rx.table.cell(test.code, font_family="var(--code-font-family)"),
        rx.table.row_header_cell(test.name, rx.text(test.specimen, size="1", color=_MUTED)),
        rx.table.cell(rx.cond(test.numeric, test.ranges + " " + test.unit, t("Text result")), max_width="22rem"),
        rx.table.cell(test.critical),
        rx.table.cell(test.price, white_space="nowrap"),
        rx.table.cell(status_badge(test.status, active=test.is_active)),
        rx.table.cell(rx.hstack(
            rx.button(t("Edit"), size="1", variant="soft", on_click=s.open_edit(test.id),
                      aria_label=t("Edit {name}", name=test.name)),
            rx.button(rx.cond(test.is_active, t("Deactivate"), t("Reactivate")), size="1", variant="soft",
                      color_scheme="gray", on_click=s.toggle_test(test.id, ~test.is_active),
                      aria_label=rx.cond(test.is_active, t("Deactivate {name}", name=test.name),
                                         t("Reactivate {name}", name=test.name))),
            spacing="2")),
        data_code=test.code,
    )


def _band_input(label: str, name: str, band: BandRow, index: rx.Var, value: rx.Var, **props) -> rx.Component:
    """``label``: ``N_``-marked, shown translated."""
    s = LabCatalogState
    input_id = name + "-" + index.to_string()
    return rx.vstack(
        rx.el.label(t(label), html_for=input_id, font_size="0.8rem", font_weight="500"),
        rx.input(id=input_id, name=name + "-" + index.to_string(), default_value=value, required=True, width="100%",
                 key=s.band_version.to_string() + input_id, on_blur=lambda v: s.note_band(index, name, v),
                 **props),
        spacing="1", width="100%",
    )


def _band_row(band: BandRow, index: rx.Var) -> rx.Component:
    s = LabCatalogState
    sex_id = "sex-" + index.to_string()
    return rx.grid(
        rx.vstack(
            rx.el.label(t("Sex"), html_for=sex_id, font_size="0.8rem", font_weight="500"),
            rx.el.select(*[rx.el.option(t(_SEX_LABELS.get(sex, sex)), value=sex) for sex in SEXES],
                         id=sex_id, name=sex_id, default_value=band.sex, class_name="native-select", width="100%",
                         key=s.band_version.to_string() + sex_id, on_change=lambda v: s.note_band(index, "sex", v),
                         min_width="0"),
            spacing="1", width="100%", min_width="0"),
        _band_input(N_("From age"), "age_min", band, index, band.age_min, input_mode="numeric"),
        _band_input(N_("Under age"), "age_max", band, index, band.age_max, input_mode="numeric"),
        _band_input(N_("Low"), "low", band, index, band.low, input_mode="decimal"),
        _band_input(N_("High"), "high", band, index, band.high, input_mode="decimal"),
        rx.button(rx.icon("trash-2", size=16, aria_hidden="true"), type="button", variant="soft", color_scheme="red",
                  on_click=s.remove_band(index), aria_label=t("Remove range {n}", n=index + 1),
                  align_self="end"),
        columns=rx.breakpoints(initial="2", sm="6"), spacing="2", width="100%", align="end",
        class_name="band-row",
    )


def _test_dialog() -> rx.Component:
    s = LabCatalogState
    test = s.editing
    adding = s.editing_id == ADDING
    return dialog(
        rx.cond(adding, t("Add a test to the lab catalog"), t("Edit {name}", name=test.name)),
        rx.form(rx.vstack(
            form_error(s.form_error),
            rx.grid(
                field(N_("Code"), "code", required=True, field_id="test-code", default_value=test.code,
                      hint=N_("Capital letters and digits, like K; fixed once the test has been ordered.")),
                field(N_("Name"), "name", required=True, field_id="test-name", default_value=test.name),
                field(N_("Specimen"), "specimen", required=True, field_id="test-specimen",
                      default_value=test.specimen, placeholder=N_("Serum")),
                field(N_("Price"), "price", required=True, field_id="test-price", default_value=test.price_input,
                      input_mode="decimal", hint=N_("Charges from now on; earlier ones keep theirs.")),
                select_field(N_("Results"), "results", [("number", N_("A number, with ranges")), ("text", N_("Text"))],
                             field_id="test-results", default=rx.cond(s.numeric, "number", "text"),
                             on_change=s.choose_results),
                field(N_("Unit"), "unit", field_id="test-unit", default_value=test.unit, placeholder="mmol/L"),
                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
            rx.cond(
                s.numeric,
                rx.vstack(
                    rx.heading(t("Reference ranges"), as_="h3", size="3"),
                    rx.text(t("One row per sex and age band, ages in whole years (under 200 means no upper limit). "
                              "Every age must be covered once for both sexes. A new range applies to results "
                              "entered from now on."), size="2", color=_MUTED),
                    rx.foreach(s.bands, _band_row),
                    rx.button(rx.icon("plus", size=16, aria_hidden="true"), t("Add a range"), type="button",
                              variant="soft", on_click=s.add_band),
                    rx.grid(
                        field(N_("Critical below"), "critical_low", field_id="test-critical-low",
                              default_value=test.critical_low, input_mode="decimal", hint=N_("Empty for none.")),
                        field(N_("Critical above"), "critical_high", field_id="test-critical-high",
                              default_value=test.critical_high, input_mode="decimal", hint=N_("Empty for none.")),
                        columns="2", spacing="3", width="100%"),
                    spacing="2", width="100%"),
                rx.fragment(),
            ),
            select_field(N_("Results reach the patient"), "release_rule", list(RELEASE_RULES.items()),
                         field_id="test-release", default=rx.cond(adding, "normal_at_once", test.release_rule)),
            form_buttons(rx.cond(adding, t("Add test"), t("Save test")), s.close_edit),
            spacing="3", margin_top="0.75rem"), on_submit=s.save_test, reset_on_submit=False),
        description=t("Code, name, specimen, price, and for numeric results the ranges by sex and age."),
        open=s.editing_id != 0, on_close=s.close_edit, max_width="52rem",
    )


CATALOG_SHOW = [("", N_("All tests")), ("active", N_("Active")), ("inactive", N_("Inactive"))]


def lab_catalog_page() -> rx.Component:
    s = LabCatalogState
    toolbar = rx.hstack(search_box(s, N_("Search tests"), N_("Code or name")),
                        filter_select(N_("Show"), "catalog-show", CATALOG_SHOW, s.filter_catalog),
                        align="end", wrap="wrap", spacing="3")
    return page_shell(
        t("Lab catalog"),
        data_table(s, caption=N_("The tests doctors can order, with their ranges and prices"),
                   columns=[("code", N_("Code")), ("name", N_("Test")), ("", N_("Reference ranges")),
                            ("", N_("Critical")), ("price", N_("Price")), ("status", N_("State")), ("", N_("Actions"))],
                   rows=s.rows, render_row=_test_row, toolbar=toolbar,
                   empty=N_("No test matches. Clear the search, or add a test with Add test.")),
        _test_dialog(),
        actions=rx.button(rx.icon("plus", size=16, aria_hidden="true"), t("Add test"), on_click=s.open_add),
    )


# --- the price list ---------------------------------------------------------------------------


def _price_row(p: PriceRow) -> rx.Component:
    s = PricesState
    return rx.table.row(
        rx.table.cell(p.kind_label),
        rx.table.row_header_cell(p.name, rx.cond(p.code != "", rx.text(p.code, size="1", color=_MUTED),
                                                 rx.fragment())),
        rx.table.cell(p.department),
        rx.table.cell(p.price, white_space="nowrap", class_name="price"),
        rx.table.cell(status_badge(p.status, active=p.is_active)),
        rx.table.cell(rx.cond(
            p.editable,
            rx.hstack(
                rx.button(t("Change price"), size="1", variant="soft", on_click=s.open_price(p.kind, p.item_id),
                          aria_label=t("Change price of {name}", name=p.name)),
                rx.cond(p.kind == "service",
                        rx.button(rx.cond(p.is_active, t("Stop charging"), t("Charge again")), size="1",
                                  variant="soft", color_scheme="gray",
                                  on_click=s.toggle_service(p.item_id, ~p.is_active),
                                  aria_label=rx.cond(p.is_active, t("Stop charging {name}", name=p.name),
                                                     t("Charge again {name}", name=p.name))),
                        rx.fragment()),
                spacing="2"),
            rx.text(t("Kept by its department"), size="1", color=_MUTED))),
        data_kind=p.kind, data_code=p.code,
    )


def _price_dialog() -> rx.Component:
    s = PricesState
    p = s.editing
    return dialog(
        t("Change the price of {name}", name=p.name),
        rx.form(rx.vstack(
            form_error(s.form_error),
            rx.text(t("Now {price}. Charges already made keep their price; the new one applies from now on.",
                      price=p.price), size="2"),
            field(N_("New price"), "price", required=True, field_id="price-new", default_value=p.price_input,
                  input_mode="decimal"),
            form_buttons(t("Save price"), s.close_price),
            spacing="3", margin_top="0.75rem"), on_submit=s.save_price, reset_on_submit=False),
        description=p.kind_label,
        open=p.kind != "", on_close=s.close_price, max_width="28rem",
    )


def _add_dialog() -> rx.Component:
    s = PricesState
    return dialog(
        t("Add a service to the price list"),
        rx.form(rx.vstack(
            form_error(s.form_error),
            rx.grid(
                field(N_("Code"), "code", required=True, field_id="service-code", placeholder="ECG",
                      hint=N_("What other services charge it by.")),
                field(N_("Price"), "price", required=True, field_id="service-price", input_mode="decimal"),
                columns="2", spacing="3", width="100%"),
            field(N_("Name"), "name", required=True, field_id="service-name", placeholder=N_("Electrocardiogram")),
            select_field(N_("Department"), "department_id", s.department_choices, field_id="service-department"),
            form_buttons(t("Add service"), s.close_add),
            spacing="3", margin_top="0.75rem"), on_submit=s.add_service, reset_on_submit=False),
        description=t("A service charged by its code that is not a consultation, a lab test or a medicine."),
        open=s.adding, on_close=s.close_add, max_width="32rem",
    )


PRICE_SHOW = [("", N_("Every price")), *KIND_LABELS.items()]


def prices_page() -> rx.Component:
    s = PricesState
    toolbar = rx.hstack(search_box(s, N_("Search prices"), N_("Name, code or department")),
                        filter_select(N_("Show"), "prices-show", PRICE_SHOW, s.filter_prices),
                        align="end", wrap="wrap", spacing="3")
    return page_shell(
        t("Prices"),
        data_table(s, caption=N_("Every price the hospital charges"),
                   columns=[("kind", N_("Kind")), ("name", N_("Name")), ("department", N_("Department")),
                            ("price", N_("Price")), ("status", N_("State")), ("", N_("Actions"))],
                   rows=s.rows, render_row=_price_row, toolbar=toolbar,
                   empty=N_("No price matches. Clear the search, or add a service with Add service.")),
        _price_dialog(), _add_dialog(),
        actions=rx.button(rx.icon("plus", size=16, aria_hidden="true"), t("Add service"), on_click=s.open_add),
    )
