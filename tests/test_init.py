from config import load_file


def test_init_writes_a_valid_annotated_config(cli, tmp_path):
    code, out, err = cli("init", "camp")
    assert code == 0, err
    path = tmp_path / "camp" / "huaxiang.toml"
    text = path.read_text(encoding="utf-8")
    assert "目标人群" in text and "Target audiences" in text
    s = load_file(path)
    assert {q.kind for q in s.queries} == {"tag", "topic", "group", "keyword"}
    assert s.engagement.send_mode == "dry-run"
    code, out, err = cli("init", "camp")
    assert code == 1 and "already exists" in err
    assert cli("init", "camp", "--force")[0] == 0
