"""Running the hospital's accounts: login and sessions, the second factor, users, departments, permissions and the admin dashboard."""
