from tests.e2e.helpers import assert_accessible, log_in, screenshot, wait_ready


def test_admin_logs_in(app_server, page, screenshot_dir):
    log_in(page, app_server.url, "admin@hms.example")
    page.wait_for_url(f"{app_server.url}/admin")
    wait_ready(page)
    page.get_by_text("Users per role").wait_for()
    screenshot(page, screenshot_dir, "dashboard-admin")
    assert_accessible(page)
