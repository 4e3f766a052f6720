"""/upload: reports added from the browser, for people who never open a terminal. Off unless the app's
`allow_upload` is set; a POST needs the page's CSRF token; each file's name is reduced to a plain name (no
path), its type and size checked, and it is written to a temporary folder that kb.add copies from."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import shutil
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.datastructures import FileStorage

from kb.ingest import FORMATS
from web.errors import HttpError
from web.holder import app_holder
from web.settings import current_settings, upload_limit, upload_max_mb
from web.uploads import Uploads

bp = Blueprint("upload", __name__)

UPLOAD_SUFFIXES = (*FORMATS, ".zip")
MAX_FILES = 20  # files in one request
ZIP_RATIO = 4  # what a .zip may unpack to, in upload limits
MAX_NAME_BYTES = 200  # a file name in seeds/, in UTF-8 (file systems allow 255)
CSRF_COOKIE = "kb_upload"
CSRF_FIELD = "csrf_token"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


def _uploads() -> Uploads:
    if not current_settings().allow_upload:
        raise HttpError(404, f"no such page or resource: {request.path} (upload is off; `kb serve --allow-upload`)")
    ext = current_app.extensions
    if "kb_uploads" not in ext:
        ext["kb_uploads"] = Uploads(Path(current_settings().seeds), app_holder())
    uploads: Uploads = ext["kb_uploads"]
    return uploads


def _token(nonce: str) -> str:
    key: bytes = current_app.extensions.setdefault("kb_csrf_key", secrets.token_bytes(32))
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def _check_csrf() -> None:
    """The token the page carried must be the one signed for this browser's cookie (double submit)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get("X-CSRF-Token") or request.form.get(CSRF_FIELD, "")
    if not nonce or not sent or not hmac.compare_digest(sent, _token(nonce)):
        raise HttpError(403, "the upload form's security token is missing or stale; reload /upload and try again",
                        code="csrf_failed")


def safe_name(raw: str | None) -> str:
    """A browser's file name as a plain name for seeds/: no folders, drive letters, control or reserved
    characters, no leading dots or spaces; Chinese kept; at most MAX_NAME_BYTES bytes, suffix kept."""
    name = unicodedata.normalize("NFC", (raw or "").replace("\\", "/"))
    name = PurePosixPath(name).name if "/" in name else name
    name = _UNSAFE.sub("_", name).strip().lstrip(". ")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = f".{suffix.lower()}" if dot else ""
    stem = stem.strip(" .") or "report"
    while len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def _save(files: list[FileStorage], workdir: Path, limit: int) -> list[Path]:
    """Each file under its safe name in `workdir`; a wrong type is 415, a file over the limit 413."""
    saved: list[Path] = []
    for fs in files:
        name = safe_name(fs.filename)
        if not name.endswith(UPLOAD_SUFFIXES):
            raise HttpError(415, f"{name}: not a report file; upload {', '.join(UPLOAD_SUFFIXES)}", param="files")
        target = workdir / name
        n = 2
        while target.exists():  # the same name twice in one upload: kb.add refuses the second by name
            target, n = workdir / f"{Path(name).stem}-{n}{Path(name).suffix}", n + 1
        fs.save(target)
        size = target.stat().st_size
        if size > limit:
            raise HttpError(413, f"{name}: {size / 2**20:.2f} MB is larger than the {upload_max_mb(current_settings()):g}"
                            " MB limit a file", param="files")
        if name.endswith(".zip"):
            _check_zip(target, name, ZIP_RATIO * limit)
        saved.append(target)
    return saved


def _check_zip(path: Path, name: str, most: int) -> None:
    """An archive whose members would unpack to more than `most` bytes is refused before it is unpacked."""
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError):
        return  # kb.add reports it, one line for the archive
    if total > most:
        raise HttpError(413, f"{name}: unpacks to {total / 2**20:.0f} MB; the limit is {most / 2**20:g} MB",
                        param="files")


@bp.get("/upload")
def upload_page() -> Any:
    uploads = _uploads()
    job = uploads.get(request.args.get("job", "")[:40])
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    settings = current_settings()
    html = render_template(
        "upload.html",
        csrf=_token(nonce),
        max_mb=upload_max_mb(settings),
        suffixes=UPLOAD_SUFFIXES,
        max_files=MAX_FILES,
        job=job.status() if job is not None else None,
    )
    resp = Response(html, mimetype="text/html")
    resp.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="Strict", path="/upload")
    return resp


@bp.post("/upload/files")
def upload_files() -> Any:
    uploads = _uploads()
    _check_csrf()
    files = [f for f in request.files.getlist("files") if f.filename]
    if not files:
        raise HttpError(400, "choose at least one report file to upload", param="files")
    if len(files) > MAX_FILES:
        raise HttpError(400, f"{len(files)} files in one upload; the limit is {MAX_FILES}", param="files")
    workdir = uploads.new_workdir()
    try:
        saved = _save(files, workdir, upload_limit(current_settings()))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    job = uploads.submit(workdir, saved)
    status = job.status()
    status["status_url"] = f"/upload/status/{job.id}"
    if "application/json" not in request.headers.get("Accept", "") and request.form.get(CSRF_FIELD):
        return Response(status=303, headers={"Location": f"/upload?job={job.id}"})  # a form sent without script
    resp = jsonify(status)
    resp.status_code = 202
    return resp


@bp.get("/upload/status/<job_id>")
def upload_status(job_id: str) -> Any:
    job = _uploads().get(job_id)
    if job is None:
        raise HttpError(404, f"no upload {job_id!r} (finished ones are kept for a while only)", param="job_id")
    resp = jsonify(job.status())
    resp.headers["Cache-Control"] = "no-store"
    return resp
