"""The optional LLM drafter against a local stand-in for an OpenAI-compatible
chat-completions server (as the sandbox stands in for the platform): its
drafts pass the same checks as any other, and a timeout, an error or a
refusal falls back to the built-in drafter with the reason on the card."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.errors import HuaxiangError
from bot.engage.planner import run_plan
from config import ConfigError, parse_settings
from storage import engagement as store
from test_planner_targets import LIBRARY, SCORES, TEXTS, relevance
from test_queue_world import NOW, build_world


class StandIn:
    """Speaks POST /v1/chat/completions; ``mode`` picks the answer."""

    def __init__(self):
        self.mode = "ok"
        self.requests: list[dict] = []
        stand = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                post = body["messages"][1]["content"].split("\n")[0].removeprefix("帖子：")
                phrase = post[2:6]
                answers = {"ok": f"“{phrase}这段写得真实在，第{len(stand.requests)}次看还是很受用！”",
                           "refuse": "抱歉，我无法帮助完成这个请求。", "link": f"{phrase}不错，详情见 https://x.cn/a",
                           "long": "好" * 300}
                if stand.mode == "slow":
                    time.sleep(1.5)
                if stand.mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                out = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"], "choices": [
                    {"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": answers.get(stand.mode, answers["ok"])}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def llm(monkeypatch):
    monkeypatch.setenv("HX_TEST_LLM_KEY", "sk-test-123")
    s = StandIn()
    yield s
    s.httpd.shutdown()


def campaign(llm, **drafting):
    d = {"drafter": "llm", "base_url": llm.url, "model": "qwen-plus", "api_key_env": "HX_TEST_LLM_KEY",
         "timeout_s": 0.5, "brand_voice": "亲切专业"}
    d.update(drafting)
    return parse_settings({"audiences": [{"name": "健身人群", "seeds": ["健身"]}, {"name": "新手妈妈", "seeds": ["辅食"]}],
                           "engagement": {"quiet_hours": "", "min_spacing_s": 0, "spacing_jitter_s": 0,
                                          "follow_suggestions": False, "library": LIBRARY, "templates": [],
                                          "min_relevance": 0.3},
                           "drafting": d})


def planned(db):
    return [r for r in store.list_items(db) if r["kind"] != "follow"]


def test_the_model_drafts_first_with_post_audience_voice_and_library(db, llm):
    build_world(db, texts=TEXTS)
    relevance(db, SCORES)
    run_plan(db, campaign(llm), NOW, rng=random.Random(0))
    rows = planned(db)
    assert rows and all(r["template"] == "llm" for r in rows)
    for r in rows:
        reason = json.loads(r["draft_reason"])
        assert reason["drafter"] == "llm" and reason["model"] == "qwen-plus"
        assert not r["text"].startswith("“")                   # quotes the model wrapped it in are removed
    req = llm.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test-123"
    prompt = req["body"]["messages"][1]["content"]
    assert "帖子：" in prompt and "健身人群" in prompt and "亲切专业" in req["body"]["messages"][0]["content"]
    assert "膝盖" in prompt or "肩胛骨" in prompt                 # the matched library entries
    assert "sk-test-123" not in json.dumps(rows, ensure_ascii=False)


@pytest.mark.parametrize("mode, why", [("500", "HTTP 500"), ("slow", "timeout"), ("refuse", "refused"),
                                       ("link", "contains a link"), ("long", "too long")])
def test_failures_fall_back_to_the_builtin_drafter_and_say_so(db, llm, mode, why):
    llm.mode = mode
    build_world(db, texts=TEXTS)
    relevance(db, SCORES)
    run_plan(db, campaign(llm), NOW, rng=random.Random(0))
    rows = planned(db)
    assert rows and all(r["template"] != "llm" for r in rows)
    reasons = [json.loads(r["draft_reason"]) for r in rows]
    assert all(r["drafter"] == "builtin" for r in reasons)
    assert why in reasons[0]["fallback"]
    assert len(llm.requests) <= 3 + (0 if mode != "ok" else len(rows))   # a failing endpoint is not asked all run


def test_config_needs_an_endpoint_and_the_key_variable(db, llm, monkeypatch):
    with pytest.raises(ConfigError) as err:
        campaign(llm, base_url="")
    assert err.value.key == "drafting.base_url"
    monkeypatch.delenv("HX_TEST_LLM_KEY")
    build_world(db, texts=TEXTS)
    relevance(db, SCORES)
    with pytest.raises(HuaxiangError, match="HX_TEST_LLM_KEY is not set"):
        run_plan(db, campaign(llm), NOW)
