"""The ustui terminal UI (Textual); a thin client of ``ustui.core``."""
