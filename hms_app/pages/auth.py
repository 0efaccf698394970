"""Login, patient registration and password change."""

from __future__ import annotations

import reflex as rx

from hms_app.components.forms import field, form_error
from hms_app.components.layout import page_shell, public_shell
from hms_app.services.passwords import MAX_BYTES, MIN_LENGTH
from hms_app.state.auth import LoginState, PasswordState, RegisterState, SessionState

PASSWORD_HINT = f"At least {MIN_LENGTH} characters (at most {MAX_BYTES} bytes), and not your email address."


def login_page() -> rx.Component:
    return public_shell(
        "Log in",
        rx.form(
            rx.vstack(
                field("Email", "email", type="email", required=True, autocomplete="username", field_id="login-email"),
                field("Password", "password", type="password", required=True, autocomplete="current-password",
                      field_id="login-password"),
                form_error(LoginState.error),
                rx.button("Log in", type="submit", width="100%", size="3", loading=LoginState.busy),
                spacing="3",
                width="100%",
            ),
            on_submit=LoginState.log_in,
            width="100%",
        ),
        rx.text(
            "New patient? ",
            # Underlined: in running text a link must not stand out by colour alone (WCAG 1.4.1).
            rx.link("Create your account", href="/register", underline="always"),
            size="2",
        ),
    )


def register_page() -> rx.Component:
    return public_shell(
        "Create your patient account",
        rx.text("You will receive a medical record number that the hospital uses to find your records.",
                size="2", color="var(--gray-11)"),
        rx.form(
            rx.vstack(
                field("Full name", "full_name", required=True, autocomplete="name"),
                field("Email", "email", type="email", required=True, autocomplete="email"),
                field("Birth date", "birth_date", type="date", required=True, autocomplete="bday"),
                field("Phone", "phone", type="tel", required=True, autocomplete="tel",
                      hint="Digits, spaces and + ( ) - only."),
                field("Password", "password", type="password", required=True, autocomplete="new-password",
                      hint=PASSWORD_HINT),
                field("Repeat the password", "password_confirm", type="password", required=True,
                      autocomplete="new-password"),
                form_error(RegisterState.error),
                rx.button("Create account", type="submit", width="100%", size="3", loading=RegisterState.busy),
                spacing="3",
                width="100%",
            ),
            on_submit=RegisterState.register,
            width="100%",
        ),
        rx.text("Already registered? ", rx.link("Log in", href="/login", underline="always"), size="2"),
    )


def password_page() -> rx.Component:
    return page_shell(
        "Change password",
        rx.cond(
            SessionState.must_change_password,
            rx.callout("Your password was set by an administrator. Choose your own before you continue.",
                       icon="key-round", color_scheme="amber", width="100%"),
            rx.fragment(),
        ),
        rx.card(
            rx.form(
                rx.vstack(
                    field("Current password", "current_password", type="password", required=True,
                          autocomplete="current-password"),
                    field("New password", "new_password", type="password", required=True,
                          autocomplete="new-password", hint=PASSWORD_HINT),
                    field("Repeat the new password", "new_password_confirm", type="password", required=True,
                          autocomplete="new-password"),
                    form_error(PasswordState.error),
                    rx.button("Change password", type="submit"),
                    spacing="3",
                    width="100%",
                ),
                on_submit=PasswordState.change_password,
                reset_on_submit=False,
            ),
            max_width="28rem",
            width="100%",
        ),
    )
