"""The UI-free core of ustui.

Nothing under this package may import textual, rich or textual_image: the
terminal UI and the command line are thin clients of it.
"""
