"""The OpenAPI schema view, generated once per process.

The schema is the same on every host (it is public and describes the API, not a tenant), and drf-spectacular's
generator is not thread-safe on first use: concurrent first requests raced in its extension loading and answered
500 (measured with 20 concurrent clients). So the first request builds it under a lock and the rest reuse it.
"""

from __future__ import annotations

import threading

from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

_lock = threading.Lock()
_schemas: dict[str | None, dict] = {}


class CachedSchemaView(SpectacularAPIView):
    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        with _lock:
            if version not in _schemas:
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=version, patterns=self.patterns
                )
                _schemas[version] = generator.get_schema(request=request, public=self.serve_public)
        return Response(
            data=_schemas[version],
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )
