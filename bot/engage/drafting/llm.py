"""An optional LLM drafter over any OpenAI-compatible chat-completions API
(DeepSeek, Qwen/DashScope, Moonshot, a local Ollama, vLLM or llama.cpp server).

Why it only ever proposes: its draft goes through the same checks as any
other (length, no links or @mentions unless allowed, deny words, and the
planner's no-identical-text rule), and a timeout, an error, a refusal or a
draft that fails a check falls back to the built-in drafter, with the reason
recorded on the card. The key comes from an environment variable and is
never logged or stored.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

import httpx

from config import Settings

from bot.errors import HuaxiangError

log = logging.getLogger(__name__)

MAX_FAILURES = 3        # consecutive failures after which a run stops asking (a dead endpoint costs one timeout each)
_LINK = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|cn|net|org|io)\b", re.IGNORECASE)
_REFUSAL = re.compile(r"抱歉|对不起|作为(?:一个)?(?:AI|人工智能|语言模型)|我无法|无法(?:提供|完成|协助)|I can(?:no|')t|As an AI",
                      re.IGNORECASE)
_WRAP = re.compile(r'^\s*(?:回复|评论|草稿|reply|comment)\s*[:：]\s*|^[\s"“”「」\']+|[\s"“”「」\']+$', re.IGNORECASE)

KIND_HINTS = {"question": "对方在提问或求推荐：直接给出有用的回答", "complaint": "对方在吐槽：先共情，再给一个可行的小建议",
              "progress": "对方在打卡或分享进步：真诚祝贺，可以问一个帖子里没回答的问题",
              "review": "对方在探店或测评：回应具体的店或产品，可以问一个帖子里没回答的问题",
              "share": "对方在分享经验：感谢并补充一点有用的信息", "statement": "回应对方说的具体内容"}


@dataclass
class LLMResult:
    text: str | None
    error: str | None = None
    model: str = ""


class LLMDrafter:
    """One per planning run; ``draft`` never raises."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        d = settings.drafting
        self.settings = settings
        self.url = d.base_url.rstrip("/") + "/chat/completions"
        self.key = None
        if d.api_key_env:
            self.key = os.environ.get(d.api_key_env, "").strip() or None
            if self.key is None:
                raise HuaxiangError(f"[drafting] api_key_env: environment variable {d.api_key_env} is not set")
        self._own_client = client is None
        self.client = client or httpx.Client(timeout=d.timeout_s)
        self.failures = 0

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def _messages(self, info, reading, matches, kind: str) -> list[dict[str, str]]:
        d, e = self.settings.drafting, self.settings.engagement
        what = "转发时附上的评论" if kind == "repost" else "评论回复"
        system = (f"你是一个品牌微博账号的运营，为别人的微博写一条{what}。品牌口吻：{d.brand_voice or '亲切、真诚、不推销'}。"
                  f"要求：像真人一样用自然的中文，针对帖子里的具体内容，不超过{min(e.max_length, 100)}个字，"
                  "不要泛泛的客套话，不要推销，不要话题标签"
                  + ("" if d.allow_links else "，不要链接") + ("" if d.allow_mentions else "，不要@任何人")
                  + "。只输出评论本身。")
        lines = [f"帖子：{info.text}", f"帖子类型：{KIND_HINTS.get(reading.kind, '')}",
                 f"作者所在人群：{info.target or info.audience}（{info.tier or '成员'}）"]
        if reading.phrases:
            lines.append("帖子的关键词：" + "、".join(reading.phrases[:4]))
        if matches:
            lines.append("可以用上的品牌小知识（选一条最合适的，可改写）：" + "；".join(m.entry.text for m in matches[:3]))
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]

    def draft(self, info, reading, matches, kind: str) -> LLMResult:
        model = self.settings.drafting.model
        if self.failures >= MAX_FAILURES:
            return LLMResult(None, f"skipped after {MAX_FAILURES} failures in a row", model)
        body = {"model": model, "messages": self._messages(info, reading, matches, kind), "n": 1,
                "temperature": self.settings.drafting.temperature, "max_tokens": self.settings.drafting.max_tokens}
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            resp = self.client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            return self._failed("timeout", model)
        except httpx.HTTPError as exc:
            return self._failed(f"connection failed ({type(exc).__name__})", model)
        if resp.status_code != 200:
            return self._failed(f"HTTP {resp.status_code}", model)
        text, problem = self._text(resp)
        if problem is None:
            problem = self.check(text or "")
        if problem is not None:
            return self._failed(problem, model)
        self.failures = 0
        return LLMResult(text, None, model)

    def _failed(self, why: str, model: str) -> LLMResult:
        self.failures += 1
        log.info("LLM drafter: %s; using the built-in drafter", why)
        return LLMResult(None, why, model)

    @staticmethod
    def _text(resp: httpx.Response) -> tuple[str | None, str | None]:
        try:
            choice = resp.json()["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None, "not a chat-completions answer"
        if choice.get("finish_reason") == "content_filter":
            return None, "refused (content filter)"
        if not isinstance(content, str):
            return None, "not a chat-completions answer"
        lines = [ln for ln in content.strip().splitlines() if ln.strip()]
        return (_WRAP.sub("", lines[0]) if lines else ""), None

    def check(self, text: str) -> str | None:
        """The checks every draft passes, here for the model's (the planner adds no-identical-text)."""
        d, e = self.settings.drafting, self.settings.engagement
        if not text.strip():
            return "empty answer"
        if _REFUSAL.search(text):
            return "refused"
        if len(text) > e.max_length:
            return f"too long ({len(text)} > {e.max_length} characters)"
        if not d.allow_links and _LINK.search(text):
            return "contains a link"
        if not d.allow_mentions and "@" in text:
            return "contains an @mention"
        for word in e.deny_keywords:
            if word and word in text:
                return f"contains deny keyword {word!r}"
        return None
