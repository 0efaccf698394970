"""Live watchers name their loader in code and are checked as the app is built: a mistake in
one stops the app as it starts instead of failing silently when a change is pushed."""

from __future__ import annotations

import pytest

from hms_app.hms_app import app
from hms_app.state import live
from hms_app.state.lab import LabResultsState, LabWorklistState
from hms_app.state.pharmacy import PharmacyDashboardState
from hms_app.state.reports import AdminReportsState


def test_the_apps_watchers_are_each_a_loader_of_their_state_on_a_page_that_loads_it():
    watchers = [w for ws in live.hub._watchers.values() for w in ws]
    assert len(watchers) == 23  # the import page and its history: issue 19
    for watcher in watchers:
        assert getattr(watcher.state, watcher.loader.__name__) is watcher.loader
    live.hub.check(app)  # what building the app did, once more


@pytest.mark.parametrize("loader", [
    "_reload",  # a name, as watchers were registered before: a typo in it went unnoticed
    PharmacyDashboardState._load,  # another state's loader
    LabWorklistState.load_rows,  # a handler any client can call, not a backend loader
    LabWorklistState._paged,  # not async
])
def test_a_loader_that_is_not_the_states_own_is_refused_as_it_is_registered(loader):
    with pytest.raises(TypeError, match="must be an async backend method of LabWorklistState"):
        live.LiveHub().watch("lab", "/lab/worklist", LabWorklistState, loader)


def test_a_loader_that_takes_arguments_is_refused():
    with pytest.raises(TypeError, match="takes arguments"):
        live.LiveHub().watch("lab", "/admin/reports", AdminReportsState, AdminReportsState._load)


def test_an_unknown_topic_is_refused():
    with pytest.raises(ValueError, match="unknown live topic"):
        live.LiveHub().watch("labs", "/lab/worklist", LabWorklistState, LabWorklistState._reload)


def test_a_watched_path_that_is_no_page_stops_the_app():
    hub = live.LiveHub()
    hub.watch("lab", "/lab/work-list", LabWorklistState, LabWorklistState._reload)
    with pytest.raises(ValueError, match="/lab/work-list, which is no page"):
        hub.check(app)


def test_a_page_that_does_not_load_the_watched_state_stops_the_app():
    hub = live.LiveHub()
    hub.watch("lab", "/lab/worklist", LabResultsState, LabResultsState._reload)
    with pytest.raises(ValueError, match="refresh LabResultsState on /lab/worklist"):
        hub.check(app)
