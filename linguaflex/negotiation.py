"""Content negotiation that never answers 406: an API client asking for text/html (a browser)
gets the JSON it would get anyway. Views that render HTML themselves (the 3-D Secure and Connect
return pages) still honour the Accept header. An unknown ``?format=`` is ignored, as an unknown
Accept is, instead of DRF's 404 (the page exists; only the representation asked for does not)."""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JSONFallbackContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type

    def filter_renderers(self, renderers, format):
        matching = [renderer for renderer in renderers if renderer.format == format]
        return matching or renderers
