"""The UI-free core of ustui.

Nothing under this package may import textual, rich or textual_image: the
terminal UI and the command line are thin clients of it.
"""

import sys as _sys

# pydicom imports its test-data downloader, which imports requests when installed;
# requests' urllib3 opens a socket at import to probe for IPv6. ustui never downloads
# anything, so the downloader gets no requests and no socket is ever created.
_requests = _sys.modules.get("requests")
if _requests is None:
    _sys.modules["requests"] = None  # type: ignore[assignment]
    try:
        import pydicom.data.download  # noqa: F401
    finally:
        del _sys.modules["requests"]
