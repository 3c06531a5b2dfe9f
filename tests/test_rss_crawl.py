"""`huaxiang crawl` against a local feed server: RSSHub routes end to end through the CLI."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIX = Path(__file__).parent / "fixtures" / "rss"
ROUTES = {
    "/douban/group/camping": "rsshub_douban_group.xml",
    "/tieba/forum/%E6%98%BE%E5%8D%A1": "rsshub_tieba_forum.xml",
    "/broken": "not_a_feed.html",
}


class _Feeds(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        self.seen.append((path, self.headers.get("If-None-Match")))
        name = ROUTES.get(path)
        if name is None:
            self.send_response(404)
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        body = (FIX / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def feed_server():
    _Feeds.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Feeds)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_crawl_cli_reads_rsshub_routes_from_a_local_server(cli, tmp_path, feed_server):
    (tmp_path / "huaxiang.toml").write_text(f"""
[database]
path = "feeds.db"

[[sources]]
name = "rsshub"
platform = "rss"
base_url = "{feed_server}"
min_interval_s = 0
jitter_s = 0
backoff_s = 0
page_retries = 0
fetch_authors = false

[[queries]]
name = "douban-camping"
source = "rsshub"
kind = "group"
value = "/douban/group/camping"

[[queries]]
name = "tieba-gpu"
source = "rsshub"
kind = "keyword"
value = "/tieba/forum/显卡"

[[queries]]
name = "broken"
source = "rsshub"
kind = "keyword"
value = "/broken"
""", encoding="utf-8")
    code, out, err = cli("crawl")
    assert code == 0, err
    assert "3 new posts" in out and "not a readable feed" in out
    from storage.db import connect

    db = connect(tmp_path / "feeds.db")
    try:
        posts = dict(db.execute("SELECT pid, uid FROM posts WHERE platform = 'rss'"))
        assert posts == {
            "https://www.douban.com/group/topic/301234567/": "douban.com/一只松鼠",
            "https://www.douban.com/group/topic/301234001/": "douban.com/徒步的Leo",
            "https://tieba.baidu.com/p/9123456789": "tieba.baidu.com/装机小白",
        }
        runs = dict(db.execute("SELECT query, status FROM crawl_runs"))
        assert runs["douban-camping"] == "ok" and runs["tieba-gpu"] == "ok"
        assert runs["broken"] == "partial"                              # an error page is a bad payload, logged
        error = db.execute("SELECT error FROM crawl_runs WHERE query = 'broken'").fetchone()[0]
        assert "not a readable feed" in error
    finally:
        db.close()
    assert ("/tieba/forum/%E6%98%BE%E5%8D%A1", None) in _Feeds.seen      # the Chinese route, percent-encoded
    # A second run sends the validators stored by the first: unchanged feeds answer 304.
    _Feeds.seen = []
    code, out, err = cli("crawl", "--query", "douban-camping", "--query", "tieba-gpu")
    assert code == 0, err
    assert "0 new posts" in out
    assert sorted(_Feeds.seen) == [("/douban/group/camping", '"v1"'), ("/tieba/forum/%E6%98%BE%E5%8D%A1", '"v1"')]
