import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tourops.settings")
application = get_wsgi_application()

from core.pii.crypto import check_keys  # noqa: E402

check_keys()
