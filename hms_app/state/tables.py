"""The base of every table that searches, sorts and pages in SQL."""

from __future__ import annotations

import reflex as rx


class PagedTableMixin(rx.State, mixin=True):
    """Search text, sort column, direction and page; a table's state fetches one page in ``_fetch``.

    Use as ``class UsersState(PagedTableMixin, SessionState)``: a mixin gives every table
    its own copies of the vars and handlers below.
    """

    search: str = ""
    sort: str = ""
    descending: bool = False
    page: int = 1
    page_count: int = 1
    total: int = 0
    page_size: int = 20
    loading: bool = False

    async def _fetch(self) -> None:
        """Fetch the current page into the subclass's rows and set ``total``/``page_count``."""
        raise TypeError(f"{type(self).__name__} must define _fetch")  # i18n: not shown (a programming error)

    def _paged(self, result) -> list:
        self.total = result.total
        self.page = result.page
        self.page_count = max(1, -(-result.total // result.page_size))
        return result.rows

    async def _reload(self):
        """Fetch the current page again (after a change, or a live update)."""
        return await self._act(self._fetch())  # type: ignore[attr-defined]

    @rx.event
    async def load_rows(self):
        """Fetch the first page (on page load)."""
        self.page = 1
        return await self._reload()

    @rx.event
    async def search_rows(self, text: str):
        self.search = str(text)[:100]
        self.page = 1
        return await self._reload()

    @rx.event
    async def sort_rows(self, column: str):
        column = str(column)[:40]
        if self.sort == column:
            self.descending = not self.descending
        else:
            self.sort = column
            self.descending = False
        self.page = 1
        return await self._reload()

    @rx.event
    async def previous_page(self):
        if self.page > 1:
            self.page -= 1
        return await self._reload()

    @rx.event
    async def next_page(self):
        if self.page < self.page_count:
            self.page += 1
        return await self._reload()
