"""File writers for exports: CSV (UTF-8 with BOM), XLSX, JSON lines, bare ids.

Why atomic writes: an export is handed on as soon as it appears; a crash half
way must leave the previous file (or nothing), never a truncated list.

Why only regular files: run as root, replacing whatever the path names would
turn ``/dev/full`` into a regular file or overwrite a read-only (444) file
without a word. An output is written beside its real target and renamed onto
it only when that target is a regular file we may write (or does not exist
yet); ``-`` (and ``/dev/stdout``) mean standard output; anything else is a
clear error.

Text from strangers is written as it is in JSON lines (HTML, bidi controls,
emoji, very long posts). In CSV a cell starting with = + - @ tab or CR gets
a leading apostrophe (OWASP's rule against formula injection) unless raw
output is asked for. XLSX cannot hold everything: XML forbids
most C0 control characters and Excel refuses cells over 32,767 characters, so
those cells are repaired and counted in ``WriteStats.notes``; every string is
stored as a string, so a stranger's ``=HYPERLINK(...)`` never becomes a formula.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

from bot.errors import HuaxiangError
from bot.textsafe import formula_safe

EXCEL_CELL_LIMIT = 32_767
FORMATS = ("csv", "xlsx", "jsonl", "uids")
EXTENSIONS = {"csv": "csv", "xlsx": "xlsx", "jsonl": "jsonl", "uids": "txt"}


@dataclass
class Column:
    key: str
    header: str
    kind: str = "text"          # text | number | list | json


@dataclass
class WriteStats:
    rows: int = 0
    notes: list[str] = field(default_factory=list)


STDOUT_NAMES = ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


def is_stdout(path: str | Path | None) -> bool:
    """``-o -`` (or ``/dev/stdout``, which people type for the same thing)."""
    return path is not None and str(path) in STDOUT_NAMES


def output_target(path: Path) -> tuple[Path, os.stat_result | None]:
    """The real file an output will replace (symlinks followed) and its
    current status, or a HuaxiangError when it must not be replaced."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real, None
    except OSError as exc:
        raise HuaxiangError(f"{path}: cannot write ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        raise HuaxiangError(f"{path}: is {kind}, not a regular file; name a file to write, or - for standard output")
    if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
        # root may write anything; a file nobody may write was made read-only on purpose.
        raise HuaxiangError(f"{path}: the file is read-only; make it writable or name another file")
    return real, st


@contextmanager
def atomic_file(path: Path, mode: str = "w", **kw: Any) -> Iterator[IO]:
    """Write to a temporary file beside the real target and rename it into place
    (keeping the old file's permissions); ``-`` writes to standard output."""
    if is_stdout(path):
        with _to_stdout(mode, **kw) as fh:
            yield fh
        return
    target, old = output_target(Path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        with open(tmp, mode, **kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if old is not None:
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@contextmanager
def _to_stdout(mode: str, **kw: Any) -> Iterator[IO]:
    """Spool to a temporary file, then copy to standard output in one go, so a
    failure half way prints nothing rather than half a file."""
    binary = "b" in mode
    out = getattr(sys.stdout, "buffer", None)
    if binary and (out is None or sys.stdout.isatty()):
        raise HuaxiangError("-: XLSX is binary and standard output is a terminal; redirect it (> file.xlsx) or use -o FILE")
    with tempfile.TemporaryFile("w+b") as spool:
        if binary:
            yield spool
        else:
            text = open(spool.fileno(), "w", closefd=False, **kw)
            with text:
                yield text
        spool.flush()
        spool.seek(0)
        if out is not None:
            sys.stdout.flush()
            shutil.copyfileobj(spool, out)
            out.flush()
        else:                      # a text-only stdout (tests capture with StringIO)
            sys.stdout.write(spool.read().decode(kw.get("encoding") or "utf-8"))


def _flat(value: Any, kind: str) -> Any:
    """A cell for CSV/XLSX: lists joined with '; ', JSON compacted, None empty."""
    if value is None:
        return ""
    if kind == "list":
        return "; ".join(str(v) for v in (value or []))
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def write_csv(path: Path, columns: Sequence[Column], rows: Iterable[dict[str, Any]], raw: bool = False) -> WriteStats:
    """UTF-8 with BOM so Excel opens Chinese text correctly; a cell that starts
    like a formula gets a leading apostrophe unless ``raw`` (then text is kept
    byte-for-byte)."""
    stats = WriteStats()
    neutralised = 0
    with atomic_file(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([c.header for c in columns])
        for row in rows:
            cells = [_flat(row.get(c.key), c.kind) for c in columns]
            if not raw:
                safe = [formula_safe(v) for v in cells]
                neutralised += sum(a is not b for a, b in zip(cells, safe))
                cells = safe
            w.writerow(cells)
            stats.rows += 1
    if neutralised:
        stats.notes.append(f"{neutralised} cells starting with = + - @ tab or CR got a leading ' so spreadsheets "
                           "show them as text (--raw-csv writes them as stored)")
    return stats


def write_jsonl(path: Path, columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> WriteStats:
    stats = WriteStats()
    with atomic_file(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps({c.header: row.get(c.key) for c in columns}, ensure_ascii=False) + "\n")
            stats.rows += 1
    return stats


def write_uids(path: Path, ids: Iterable[str]) -> WriteStats:
    """One platform user id per line and nothing else (the form ad platforms
    take for custom audiences). An id with whitespace or control characters
    would break that form, so it is left out and counted."""
    stats = WriteStats()
    bad = 0
    seen: set[str] = set()
    with atomic_file(path, "w", encoding="utf-8", newline="\n") as fh:
        for uid in ids:
            uid = "" if uid is None else str(uid)
            if not uid or any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in uid):
                bad += 1
                continue
            if uid in seen:
                continue
            seen.add(uid)
            fh.write(uid + "\n")
            stats.rows += 1
    if bad:
        stats.notes.append(f"{bad} ids left out: empty or containing whitespace/control characters")
    return stats


def display_width(text: str) -> int:
    """Columns a string takes in a spreadsheet: wide (CJK) characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# XLSX cells that are times (ISO text in the database) become real dates in the
# campaign's zone; *_url cells become clickable links.
DATE_KEYS = frozenset({"first_seen", "last_seen", "at"})
XLSX_DATE_FORMAT = "yyyy-mm-dd hh:mm"


def _is_date_column(key: str) -> bool:
    return key in DATE_KEYS or key.endswith("_at")


def _xlsx_date(value: Any, tz) -> Any:
    """An ISO time as a naive datetime in ``tz`` (Excel has no zones); other values unchanged."""
    from bot.i18n import to_local

    if not isinstance(value, str) or not value:
        return value
    local = to_local(value, tz)
    return local.replace(tzinfo=None) if local is not None else value


def _header(c: Column, lang: str) -> str:
    from bot.i18n import MESSAGES, t

    return t(f"col.{c.key}", lang) if lang == "zh" and f"col.{c.key}" in MESSAGES else c.header


def write_xlsx(path: Path, columns: Sequence[Column], rows: Iterable[dict[str, Any]], title: str = "export",
               lang: str = "zh", tz_name: str = "Asia/Shanghai") -> WriteStats:
    """Header row (Chinese by default), frozen below the header, widths fitted to the
    first rows; times as real dates in ``tz_name``, *_url cells as clickable links."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from bot.i18n import zone

    tz = zone(tz_name)
    headers = [_header(c, lang) for c in columns]
    stats = WriteStats()
    repaired = truncated = 0
    rows = iter(rows)
    # Widths must be set before the first row in write-only mode: fit them to a sample.
    sample: list[dict[str, Any]] = []
    for row in rows:
        sample.append(row)
        if len(sample) >= 200:
            break
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_sheet_title(title))
    ws.freeze_panes = "A2"
    for i, c in enumerate(columns, start=1):
        widest = max([display_width(headers[i - 1])] + [display_width(str(_flat(r.get(c.key), c.kind))[:200]) for r in sample])
        ws.column_dimensions[get_column_letter(i)].width = max(8, min(60, widest + 2))
    bold = Font(bold=True)
    link_font = Font(color="0563C1", underline="single")

    def cell(value: Any, header: bool = False, key: str = "") -> WriteOnlyCell:
        nonlocal repaired, truncated
        if isinstance(value, str):
            if ILLEGAL_CHARACTERS_RE.search(value):
                value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
                repaired += 1
            if len(value) > EXCEL_CELL_LIMIT:
                value = value[: EXCEL_CELL_LIMIT - 1] + "…"
                truncated += 1
        c = WriteOnlyCell(ws, value=value)
        if isinstance(value, str):
            c.data_type = "s"      # never a formula, whatever the text starts with
            if key.endswith("_url") and value.startswith(("https://", "http://")) and not header:
                c.hyperlink = value
                c.font = link_font
        elif hasattr(value, "year"):
            c.number_format = XLSX_DATE_FORMAT
        if header:
            c.font = bold
        return c

    ws.append([cell(h, header=True) for h in headers])

    def all_rows() -> Iterator[dict[str, Any]]:
        yield from sample
        yield from rows

    for row in all_rows():
        values = []
        for c in columns:
            v = _flat(row.get(c.key), c.kind)
            if isinstance(v, bool):
                v = int(v)
            if _is_date_column(c.key):
                v = _xlsx_date(v, tz)
            values.append(cell(v, key=c.key))
        ws.append(values)
        stats.rows += 1
    if stats.rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{stats.rows + 1}"
    with atomic_file(path, "wb") as fh:
        _save_workbook(wb, fh)
    if repaired:
        stats.notes.append(f"{repaired} cells had control characters XLSX cannot hold (replaced by U+FFFD)")
    if truncated:
        stats.notes.append(f"{truncated} cells longer than Excel's {EXCEL_CELL_LIMIT} characters were cut")
    return stats


def _save_workbook(wb: Any, fh: IO[bytes]) -> None:
    """``Workbook.save`` with the zip archive in our hands: when the disk fills
    up half way, the archive is closed here, so its finaliser does not try
    again on a closed file and print an "Exception ignored" traceback after
    the one-line error."""
    import zipfile
    from datetime import datetime, timezone

    from openpyxl.writer.excel import ExcelWriter

    archive = zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    wb.properties.modified = datetime.now(tz=timezone.utc).replace(tzinfo=None)
    try:
        ExcelWriter(wb, archive).save()         # closes the archive when it succeeds
    except BaseException:
        try:
            archive.close()                     # fails too on a full disk, but leaves nothing to finalise
        except Exception:
            pass
        raise


def _sheet_title(title: str) -> str:
    bad = '[]:*?/\\'
    clean = "".join("_" if ch in bad else ch for ch in title).strip("'") or "export"
    return clean[:31]


Writer = Callable[[Path, Sequence[Column], Iterable[dict[str, Any]]], WriteStats]


def write_table(fmt: str, path: Path, columns: Sequence[Column], rows: Iterable[dict[str, Any]],
                title: str = "export", id_key: str = "user_id", raw_csv: bool = False,
                settings: Any = None) -> WriteStats:
    """``settings`` (optional) gives XLSX its header language and time zone."""
    if fmt == "csv":
        return write_csv(path, columns, rows, raw=raw_csv)
    if fmt == "xlsx":
        from bot.i18n import language

        tz_name = settings.engagement.timezone if settings is not None else "Asia/Shanghai"
        return write_xlsx(path, columns, rows, title=title, lang=language(settings), tz_name=tz_name)
    if fmt == "jsonl":
        return write_jsonl(path, columns, rows)
    if fmt == "uids":
        return write_uids(path, (r.get(id_key) for r in rows))
    raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
