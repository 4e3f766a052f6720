"""The web UI and JSON API of kb (Flask); `create_app(settings)` builds the app over one index."""

from web.app import create_app
from web.settings import Settings

__all__ = ["Settings", "create_app"]
