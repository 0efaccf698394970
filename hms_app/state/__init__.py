"""Reflex state classes: each handler resolves the user and calls one service."""
