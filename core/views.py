from django.shortcuts import render

from core.api import error_response


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _wants_json(request):
        return error_response(404, "not_found", "Not found.")
    return render(request, "errors/404.html", status=404)


def server_error(request):
    if _wants_json(request):
        return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return render(request, "errors/500.html", status=500)


def bad_request(request, exception=None):
    if _wants_json(request):
        return error_response(400, "bad_request", "The request could not be understood.")
    return render(request, "errors/400.html", status=400)


def permission_denied(request, exception=None):
    if _wants_json(request):
        return error_response(403, "permission_denied", "You do not have permission to do this.")
    return render(request, "errors/403.html", status=403)
