"""Limits the server is started with and the service enforces, importable without the heavy stack."""
from __future__ import annotations

MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
