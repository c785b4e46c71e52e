"""Consumers that queue the booking's emails."""
