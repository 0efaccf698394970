"""Who is asking: resolved from the session on every call, never taken from the client."""

from __future__ import annotations

from dataclasses import dataclass, field

from hms_app.db.enums import Permission, Role


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: Role
    email: str
    full_name: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    ip_address: str = ""
    session_id: int | None = None
    must_change_password: bool = False
    language: str = ""
    """The language the user chose; "" when not chosen."""

    def can(self, permission: Permission) -> bool:
        return permission.value in self.permissions


@dataclass(frozen=True)
class Anonymous:
    """A visitor without a session (login, registration); carries only the address."""

    ip_address: str = ""
