"""The profile every role's dashboard shows, the doctor's and the lab's desks, and the notifications page."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from hms_app.services.administration import users
from hms_app.services.administration.users import Profile
from hms_app.services.core.language import _, ngettext
from hms_app.services.core.numbers import format_number
from hms_app.services.messaging import mail, notifications
from hms_app.services.messaging.notifications import NotificationRow
from hms_app.services.reporting import desks
from hms_app.services.reporting.desks import DoctorDesk, LabDesk
from hms_app.state.auth import SessionState
from hms_app.state.tables import PagedTableMixin

_EMPTY_PROFILE = Profile(user_id=0, full_name="", email="", role="", role_label="", unit="")


class ProfileState(SessionState):
    """The signed-in user's own profile."""

    profile: Profile = _EMPTY_PROFILE
    email_reminders: bool = True

    async def _fetch(self) -> None:
        self.profile = await self._call(users.get_own_profile)
        self.email_reminders = await self._call(mail.my_email_reminders, write=False)

    @rx.event
    async def load_profile(self):
        answer = await self._act(self._fetch())
        if answer.refused:
            self.profile = _EMPTY_PROFILE
        return answer

    @rx.event
    async def choose_reminders(self, wanted: bool):
        """Turn one's appointment reminders by e-mail on or off."""
        answer = await self._act(mail.choose_email_reminders, wanted=wanted,
                                 success=_("We will e-mail you a reminder the day before each appointment.") if wanted
                                 else _("No more reminders by e-mail."))
        if not answer.refused:
            self.email_reminders = wanted
        return answer


class NotificationsState(PagedTableMixin, SessionState):
    rows: list[NotificationRow] = []

    async def _fetch(self) -> None:
        result = await self._call(notifications.list_notifications, write=False, page=self.page,
                                  page_size=self.page_size)
        self.rows = self._paged(result)
        await self._refresh_unread()

    @rx.event
    async def mark_read(self, notification_id: int):
        answer = await self._act(notifications.mark_read, notification_id=notification_id)
        return answer if answer.refused else await self._reload()

    @rx.event
    async def mark_all_read(self):
        return await self._act(notifications.mark_all_read, refresh=self._reload, success=lambda count: (
            ngettext("{n} notification marked as read.", "{n} notifications marked as read.", count).format(
                n=format_number(count)) if count else _("Nothing was unread.")))




async def _load_desk(state: DoctorDeskState | LabDeskState, service: Callable[..., object]):
    """Fetch a desk into ``state.desk``; on refusal the desk shown stays as it was."""
    answer = await state._act(service, write=False)
    if not answer.refused:
        state.desk = answer.result
    return answer


class DoctorDeskState(SessionState):
    """The doctor's dashboard: today's visits and the counts of what waits, live."""

    desk: DoctorDesk = DoctorDesk([], [])

    async def _load(self):
        return await _load_desk(self, desks.doctor_desk)

    @rx.event
    async def load_desk(self):
        return await self._load()


class LabDeskState(SessionState):
    """The lab's dashboard: open orders by status and priority, today's turnaround, live."""

    desk: LabDesk = LabDesk([], [], 0, 0, "")

    async def _load(self):
        return await _load_desk(self, desks.lab_desk)

    @rx.event
    async def load_desk(self):
        return await self._load()
