"""Daphne (Twisted) serves the ASGI app; one Twisted default costs every upload dearly.

``twisted.web.http.Request`` parses a POSTed multipart/form-data body into
``request.args`` with the stdlib ``email`` parser before handing the request on
(twisted/twisted#4519). Daphne never reads ``args``: it streams the raw body to Django,
which parses the multipart itself. For a 450 KB image that duplicate parse was about a
fifth of the web process's CPU per prediction. Twisted has a switch for it,
``parsePOSTFormSubmission``; daphne builds its requests without passing it.
"""
from __future__ import annotations


def skip_twisted_form_parsing() -> bool:
    """Turn Twisted's form parsing off for daphne's requests (True when daphne is present)."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # served by another ASGI server
        return False
    if getattr(WebRequest, "_tessera_form_parsing_off", False):
        return True
    original_init = WebRequest.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest.__init__ = __init__
    WebRequest._tessera_form_parsing_off = True
    return True
