"""Telegram: the sender that drains the outbox, the bot's commands and buttons, and the
transport that records every Bot API call."""
