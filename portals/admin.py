"""Django's admin imports this module of every app: the back office's own pages take their models' places here."""

from portals.backoffice import admin  # noqa: F401  (registers the back office's admin pages)
