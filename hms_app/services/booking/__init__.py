"""Doctors' hours, free slots, appointments and the waitlist."""
