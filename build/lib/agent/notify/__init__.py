"""Notifications: the outbox is the only way out; senders drain it in order."""
