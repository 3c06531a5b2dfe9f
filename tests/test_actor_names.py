"""Names in the audit log (issue 17.6, CLI side): nobody approves as an
invisible or look-alike version of the system's own actors, and an opt-out
names someone."""

from __future__ import annotations

import pytest

from conftest import approver
from bot.engage import policy
from storage.db import connect
from test_export import seed_fixture

SPOOFS = ["\u200bhuaxiang/sender", "huaxiang／sender", "huaxiang\u2215sender", "HUAXIANG/SENDER", "huaхiang/sender",
          "ｈｕａｘｉａｎｇ/planner", "huaxiang /sender", "sender\u200d", "王小明\u202e", "\u2066王小明", "\u00ad王", "bot",
          "", "   ", "\ufeff"]


@pytest.mark.parametrize("name", SPOOFS)
def test_spoofed_or_invisible_names_are_not_people(name):
    assert not policy.is_named_person(name)


@pytest.mark.parametrize("name", ["王小明", "Li Wei", "anna.k", "huaxiang-fan", "sender2", "小红 (lead)"])
def test_real_names_are_people(name):
    assert policy.is_named_person(name)


@pytest.fixture
def seeded(tmp_path, cli):
    db = connect(tmp_path / "huaxiang.db")
    seed_fixture(db)
    approver(db, "王小明")
    db.close()


@pytest.mark.parametrize("name", ["\u200bhuaxiang/sender", "huaxiang／sender"])
def test_queue_approve_refuses_a_system_look_alike(seeded, cli, tmp_path, name):
    code, out, err = cli("queue", "approve", "1", "--by", name)
    assert code == 1 and "person's name" in err, (out, err)
    db = connect(tmp_path / "huaxiang.db")
    assert db.execute("SELECT status FROM queue WHERE id = 1").fetchone()[0] == "pending"
    db.close()
    code, out, err = cli("queue", "approve", "1", "--by", "王小明")
    assert code == 0, err


@pytest.mark.parametrize("user", ["", "   ", "a\u200bb", "x\ny"])
def test_optout_add_needs_a_user(cli, tmp_path, user):
    code, out, err = cli("--db", "o.db", "optout", "add", user, "--by", "王小明")
    assert code == 1 and "USER must be" in err, (out, err)
    code, out, err = cli("--db", "o.db", "optout", "add", "u1", "--by", "huaxiang／sender")
    assert code == 1 and "--by needs a person's name" in err
