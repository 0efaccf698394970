"""Login, patient registration and password change."""

from __future__ import annotations

import reflex as rx

from hms_app.components.forms import field, form_error
from hms_app.components.i18n import t
from hms_app.components.layout import page_shell, public_shell
from hms_app.services.core.language import N_
from hms_app.services.core.passwords import MAX_BYTES, MIN_LENGTH
from hms_app.state.auth import LoginState, PasswordState, RegisterState, SessionState


def _password_hint() -> rx.Var[str]:
    return t("At least {min_length} characters (at most {max_bytes} bytes), and not your email address.",
             min_length=MIN_LENGTH, max_bytes=MAX_BYTES)


def login_page() -> rx.Component:
    """The password, then (for an account that owes one) the code, the enrolment or the recovery codes."""
    return rx.match(
        LoginState.step,
        ("code", _code_step()),
        ("enrol", _enrol_step()),
        ("recovery", _recovery_codes_step()),
        _password_step(),
    )


def _code_form(handler, button: rx.Var[str], hint: str) -> rx.Component:
    return rx.form(
        rx.vstack(
            field(N_("Code"), "code", required=True, autocomplete="one-time-code", field_id="login-code", hint=hint,
                  input_mode="text", auto_focus=True),
            form_error(LoginState.error),
            rx.button(button, type="submit", width="100%", size="3", loading=LoginState.busy),
            spacing="3",
            width="100%",
        ),
        on_submit=handler,
        reset_on_submit=True,
        width="100%",
    )


def _start_over() -> rx.Component:
    return rx.button(t("Start again with email and password"), variant="ghost", size="2", type="button",
                     on_click=LoginState.start_over)


def _code_step() -> rx.Component:
    return public_shell(
        N_("Enter your code"),
        rx.text(t("Open the authenticator app on your phone and enter the six-digit code it shows for this "
                  "hospital. Without your phone, enter one of your recovery codes."), size="2"),
        _code_form(LoginState.verify_code, t("Log in"), N_("Six digits, or a recovery code like ABCD-EFGH-IJKL-MNOP.")),
        _start_over(),
    )


def _enrol_step() -> rx.Component:
    return public_shell(
        N_("Set up your authenticator"),
        rx.text(t("Your account needs a second step at every login. Scan this QR code with an authenticator "
                  "app (such as FreeOTP, Google Authenticator or Microsoft Authenticator), then enter the "
                  "six-digit code it shows."), size="2"),
        rx.center(
            rx.image(src=LoginState.enrol_qr, alt=t("QR code for your authenticator app; the same key is written below"),
                     width="220px", height="220px", id="enrol-qr"),
            width="100%",
        ),
        rx.vstack(
            rx.text(t("Cannot scan? Type this key into the app instead:"), size="2"),
            rx.code(LoginState.enrol_secret, id="enrol-secret", size="3", style={"word_break": "break-all"}),
            spacing="1",
            width="100%",
        ),
        _code_form(LoginState.confirm_enrolment, t("Confirm and log in"), N_("The six digits the app shows now.")),
        _start_over(),
    )


def _recovery_code(code: rx.Var) -> rx.Component:
    return rx.el.li(rx.code(code, size="3"))


def _recovery_codes_step() -> rx.Component:
    return public_shell(
        N_("Save your recovery codes"),
        rx.callout(t("These codes are shown only now. Each lets you log in once without your phone. Print them "
                     "or keep them somewhere safe, apart from your phone."), icon="key-round", color_scheme="amber"),
        rx.el.ul(rx.foreach(LoginState.recovery_codes, _recovery_code), id="recovery-codes",
                 style={"columns": "2", "list_style": "none", "padding": "0", "margin": "0", "line_height": "2"}),
        rx.button(t("I have saved my recovery codes"), width="100%", size="3", on_click=LoginState.leave_recovery_codes),
    )


def _password_step() -> rx.Component:
    return public_shell(
        N_("Log in"),
        rx.form(
            rx.vstack(
                field(N_("Email"), "email", type="email", required=True, autocomplete="username", field_id="login-email"),
                field(N_("Password"), "password", type="password", required=True, autocomplete="current-password",
                      field_id="login-password"),
                form_error(LoginState.error),
                rx.button(t("Log in"), type="submit", width="100%", size="3", loading=LoginState.busy),
                spacing="3",
                width="100%",
            ),
            on_submit=LoginState.log_in,
            width="100%",
        ),
        rx.text(
            t("New patient?"),
            " ",
            # Underlined: in running text a link must not stand out by colour alone (WCAG 1.4.1).
            rx.link(t("Create your account"), href="/register", underline="always"),
            size="2",
        ),
    )


def register_page() -> rx.Component:
    return public_shell(
        N_("Create your patient account"),
        rx.text(t("You will receive a medical record number that the hospital uses to find your records."),
                size="2", color="var(--gray-11)"),
        rx.form(
            rx.vstack(
                field(N_("Full name"), "full_name", required=True, autocomplete="name"),
                field(N_("Email"), "email", type="email", required=True, autocomplete="email"),
                field(N_("Birth date"), "birth_date", type="date", required=True, autocomplete="bday"),
                field(N_("Phone"), "phone", type="tel", required=True, autocomplete="tel",
                      hint=N_("Digits, spaces and + ( ) - only.")),
                field(N_("Password"), "password", type="password", required=True, autocomplete="new-password",
                      hint=_password_hint()),
                field(N_("Repeat the password"), "password_confirm", type="password", required=True,
                      autocomplete="new-password"),
                form_error(RegisterState.error),
                rx.button(t("Create account"), type="submit", width="100%", size="3", loading=RegisterState.busy),
                spacing="3",
                width="100%",
            ),
            on_submit=RegisterState.register,
            width="100%",
        ),
        rx.text(t("Already registered?"), " ", rx.link(t("Log in"), href="/login", underline="always"), size="2"),
    )


def password_page() -> rx.Component:
    return page_shell(
        N_("Change password"),
        rx.cond(
            SessionState.must_change_password,
            rx.callout(t("Your password was set by an administrator. Choose your own before you continue."),
                       icon="key-round", color_scheme="amber", width="100%"),
            rx.fragment(),
        ),
        rx.card(
            rx.form(
                rx.vstack(
                    field(N_("Current password"), "current_password", type="password", required=True,
                          autocomplete="current-password"),
                    field(N_("New password"), "new_password", type="password", required=True,
                          autocomplete="new-password", hint=_password_hint()),
                    field(N_("Repeat the new password"), "new_password_confirm", type="password", required=True,
                          autocomplete="new-password"),
                    form_error(PasswordState.error),
                    rx.button(t("Change password"), type="submit"),
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
