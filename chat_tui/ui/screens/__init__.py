"""Modal screens of the app: help, search, new conversation."""
