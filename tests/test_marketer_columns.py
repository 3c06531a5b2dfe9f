"""Issue 14: the account type and profile details reach `audiences show` and the audience export."""

from __future__ import annotations

import csv

from storage.db import connect, transaction
from storage.posts import upsert_users
from storage.records import User
from test_export import seed_fixture


def _mark(tmp_path):
    db = connect(tmp_path / "huaxiang.db")
    seed_fixture(db)
    with transaction(db):
        # 1000000 is an organisation (the recorded 万科公益基金会 has verified_type 7) with "100万+" followers.
        upsert_users(db, [User(platform="weibo", uid="1000000", verified=True, verified_type=7, followers=1_000_000,
                               counts_floor=["followers"], ip_location="北京", full_profile=True),
                          User(platform="weibo", uid="1000002", verified_type=-1, company="万科", full_profile=True)])
        # `audiences show` prints keywords as the analysis stores them (plain words)
        db.execute("""UPDATE audiences SET keywords = '["健身", "增肌"]', topics = '[]' WHERE id = 1""")
    db.close()


def test_export_has_account_type_and_lower_bound(tmp_path, cli):
    _mark(tmp_path)
    code, out, err = cli("export", "audience", "健身人群", "--format", "csv", "-o", "fit.csv")
    assert code == 0, err
    with open(tmp_path / "fit.csv", encoding="utf-8-sig", newline="") as fh:
        rows = {r["user_id"]: r for r in csv.DictReader(fh)}
    org, person = rows["1000000"], rows["1000002"]
    assert org["account_type"] == "机构 (blue V)" and org["followers_at_least"] == "1000000"
    assert org["ip_location"] == "北京"
    assert person["account_type"] == "个人" and person["followers_at_least"] == "" and person["company"] == "万科"


def test_audiences_show_names_the_account_type(tmp_path, cli):
    _mark(tmp_path)
    code, out, err = cli("audiences", "show", "1")
    assert code == 0, err
    assert "机构 (blue V)" in out and "1000000+" in out and "北京" in out
