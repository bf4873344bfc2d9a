"""Content negotiation that never answers 406: an API client asking for text/html (a browser)
gets the JSON it would get anyway. Views that render HTML themselves (the 3-D Secure return page)
still honour the Accept header."""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JSONFallbackContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
