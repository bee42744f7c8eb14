"""Modal screens of the app: help, search, new conversation, confirm, settings, the model
picker and the code block picker (each imported when opened, never for the first frame)."""
