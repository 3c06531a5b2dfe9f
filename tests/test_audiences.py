"""The analyze and audiences commands, through the CLI."""

from __future__ import annotations

import json

from test_analysis import make_corpus


def _write_jsonl(path, posts):
    with open(path, "w", encoding="utf-8") as fh:
        for p in posts:
            fh.write(json.dumps({"id": p.pid, "user_id": p.uid, "text": p.text, "created_at": p.created_at,
                                 "user_name": p.author.name}, ensure_ascii=False) + "\n")


def test_analyze_list_show_rename(cli, tmp_path):
    posts, _ = make_corpus(n_users=120, seed=5)
    _write_jsonl(tmp_path / "posts.jsonl", posts)
    (tmp_path / "huaxiang.toml").write_text(
        '[[audiences]]\nname = "健身人群"\nseeds = ["健身", "增肌", "撸铁"]\n', encoding="utf-8")
    code, out, err = cli("import", "posts.jsonl")
    assert code == 0, err
    code, out, err = cli("analyze")
    assert code == 0, err
    assert "4 audiences from 120 users" in out and "audiences show ID" in out
    code, out, err = cli("audiences")
    assert code == 0, err
    lines = [l for l in out.splitlines() if l.strip().startswith(("│", "┃")) or "·" in l]
    assert len([l for l in out.splitlines() if "·" in l]) >= 4, out
    first_id = int(next(l for l in out.splitlines() if "·" in l).strip("│ ").split()[0])
    code, out, err = cli("audiences", "show", str(first_id))
    assert code == 0, err
    for part in ("keywords:", "tiers: leaders", "influencers", "sample posts:", "most active hours"):
        assert part in out, out
    code, out, err = cli("audiences", "rename", str(first_id), "我的受众")
    assert code == 0 and "我的受众" in out
    code, out, err = cli("analyze", "--k", "auto")
    assert code == 0, err
    assert "我的受众" in out
    code, out, err = cli("audiences", "show", str(first_id))
    assert out.startswith(f"audience {first_id}: 我的受众") and "auto-name" in out
    code, out, err = cli("audiences", "show", "999")
    assert code == 1 and "no audience with id 999" in err
    code, out, err = cli("audiences", "rename", "999", "x")
    assert code == 1
    del lines


def test_analyze_bad_k_and_empty_db(cli):
    code, out, err = cli("analyze", "--k", "lots")
    assert code == 2 and "auto" in err
    code, out, err = cli("analyze", "--k", "1")
    assert code == 2
    code, out, err = cli("analyze")
    assert code == 1 and "no huaxiang database here" in err     # a typo in --db creates nothing
    from storage.db import connect

    connect("huaxiang.db").close()
    code, out, err = cli("analyze")
    assert code == 1 and "nothing to analyse" in err
    code, out, err = cli("audiences")
    assert code == 0 and "no audiences yet" in out
