"""The typed settings schema.

Every key a campaign config may contain is a field here, with its default.
The loader (``config.loader``) validates a TOML document against these
dataclasses generically, so adding a key is adding a field: the unknown-key,
wrong-type and missing-key messages come for free.

Field metadata:
- ``doc``: one line shown in ``huaxiang init``'s annotated example.
- ``check``: a callable ``(value) -> str | None``; a string is the error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

QUERY_KINDS = ("tag", "topic", "group", "keyword")
# Send modes that need no platform adapter; the others are the adapters' own.
GENERIC_SEND_MODES = ("dry-run", "manual")

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def check_schedule(value: str) -> str | None:
    """A schedule is a 5-field crontab line or ``every <N>[smhd]``."""
    if value == "" or value == "manual":
        return None
    if re.fullmatch(r"every\s+\d+\s*[smhd]", value.strip()):
        return None
    try:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(value)
    except Exception as exc:  # apscheduler raises ValueError with a reason
        return f"bad cron expression {value!r} ({exc}); use 5 fields like '*/30 * * * *' or 'every 30m'"
    return None


def check_quiet_hours(value: str) -> str | None:
    if value == "" or _HHMM.match(value):
        return None
    return f"bad quiet hours {value!r}; use 'HH:MM-HH:MM' like '23:00-08:00'"


def check_positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value!r}"


def check_non_negative(value: float) -> str | None:
    return None if value >= 0 else f"must be 0 or more, got {value!r}"


def check_k(value: str | int) -> str | None:
    if value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
        return None
    return f"must be 'auto' or a whole number of 2 or more, got {value!r}"


ENCODERS = ("auto", "words", "semantic")


def check_encoder(value: str) -> str | None:
    return None if value in ENCODERS else f"must be one of {', '.join(ENCODERS)}, got {value!r}"


# What a template variant may ask to be filled in (bot.engage.drafts fills them).
TEMPLATE_PLACEHOLDERS = ("nickname", "topic", "keyword", "audience", "phrase", "tip")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


def check_variants(value: list[str]) -> str | None:
    """Every ``{name}`` in a variant must be a known placeholder: a typo like
    ``{nick}`` would otherwise reach a stranger as written."""
    for i, text in enumerate(value):
        for name in _PLACEHOLDER_RE.findall(text):
            if name not in TEMPLATE_PLACEHOLDERS:
                known = " ".join("{" + p + "}" for p in TEMPLATE_PLACEHOLDERS)
                return f"variant {i + 1} has unknown placeholder {{{name}}}; known: {known}"
    return None


DRAFTERS = ("builtin", "llm")


def check_drafter(value: str) -> str | None:
    return None if value in DRAFTERS else f"must be one of {', '.join(DRAFTERS)}, got {value!r}"


def check_unit(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value!r}"


def _f(default, doc: str = "", check=None, **kw):
    meta = {"doc": doc}
    if check is not None:
        meta["check"] = check
    if callable(default) and not isinstance(default, (str, int, float, bool)):
        return field(default_factory=default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass(frozen=True)
class PlatformRules:
    """What the registered platform adapters accept, handed to the loader by
    the bot layer (config imports nothing of ours, so it cannot list them)."""

    keys: dict[str, frozenset[str]]      # platform name -> the platform-only [[sources]] keys it takes
    send_modes: tuple[str, ...]          # send modes the adapters provide (besides GENERIC_SEND_MODES)


@dataclass
class DatabaseSettings:
    path: str = _f("huaxiang.db", "SQLite file; relative paths are relative to the current folder")
    busy_timeout_ms: int = _f(30000, "how long a writer waits for another before giving up", check_positive)


@dataclass
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _f("WARNING", "console log level (-v on the command line: INFO, -vv: DEBUG)")
    json_file: str = _f("", "optional JSON-lines log file (rotated); empty = none")
    max_bytes: int = _f(10_000_000, "rotate the JSON log at this size", check_positive)
    backups: int = _f(5, "rotated JSON log files kept", check_non_negative)


@dataclass
class SourceSettings:
    name: str = _f(None, "your name for this source; queries refer to it")
    platform: str = _f(None, "the platform adapter to use (the error for an unknown name lists the registered ones)")
    base_url: str = _f("", "API root, e.g. https://m.weibo.cn or the sandbox's http://127.0.0.1:PORT")
    cookie_env: str = _f("", "environment variable holding the login cookie")
    cookie_file: str = _f("", "file (outside the repo) holding the login cookie")
    token_env: str = _f("", "environment variable holding an API access token (sending)")
    token_file: str = _f("", "file (outside the repo) holding an API access token")
    min_interval_s: float = _f(5.0, "at least this many seconds between requests to this host", check_non_negative)
    jitter_s: float = _f(1.0, "random extra wait up to this many seconds", check_non_negative)
    timeout_s: float = _f(20.0, "per-request timeout", check_positive)
    max_retries: int = _f(3, "retries of one request on 5xx, 429 and timeouts (a crawled page: at most 1 +"
                          " max_retries + page_retries requests in all)", check_non_negative)
    user_agent: str = _f(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "User-Agent header",
    )
    fetch_authors: bool = _f(True, "also fetch each new author's profile and recent posts")
    author_pages: int = _f(1, "pages of each author's timeline to fetch", check_non_negative)
    comment_pages: int = _f(0, "pages of comments to fetch per post (0 = none)", check_non_negative)
    visibility: Literal["public", "unlisted", "private", "direct"] = _f(
        "unlisted", "mastodon: visibility of sent replies (public | unlisted | private | direct)"
    )
    api_base_url: str = _f("", "write API root (Open API v2); empty = https://api.weibo.com, or base_url for the sandbox")
    backoff_s: float = _f(2.0, "first wait before a retry; doubles with each retry (plus jitter)", check_non_negative)
    max_backoff_s: float = _f(300.0, "longest wait taken in-line; a longer Retry-After pauses the source instead", check_non_negative)
    page_retries: int = _f(2, "re-fetches of a page that came back malformed, blocked or failed (sharing one"
                           " budget with max_retries)", check_non_negative)
    block_cooldown_s: float = _f(900.0, "pause after persistent blocking; doubles with each consecutive block", check_non_negative)
    max_cooldown_s: float = _f(86400.0, "longest pause after repeated blocking", check_non_negative)
    author_budget: int = _f(100, "new authors (profile + timeline) fetched per query run", check_non_negative)
    profile_details: bool = _f(True, "weibo: also read each author's 基本资料 page (location, birthday, school, company, "
                                     "IP属地, registration): one more request per author")


@dataclass
class QuerySettings:
    name: str = _f(None, "your name for this query")
    source: str = _f(None, "the [[sources]] name to run it against")
    kind: Literal["tag", "topic", "group", "keyword"] = _f(None, "tag | topic | group | keyword")
    value: str = _f(None, "the tag, topic (without #), group id/name or keyword")
    schedule: str = _f("*/30 * * * *", "cron line or 'every 30m'", check_schedule)
    max_pages: int = _f(5, "page budget per run", check_positive)
    enabled: bool = _f(True, "set false to keep a query but not run it")


@dataclass
class AudienceSettings:
    name: str = _f(None, "name of a target audience you care about")
    seeds: list[str] = _f(list, "seed keywords that define it (kept whole by the tokenizer)")
    priority: int = _f(1, "higher = planned first", check_non_negative)
    brand_words: list[str] = _f(list, "brand or product words to keep whole")
    description: str = _f("", "one line in plain Chinese saying who they are, e.g. 关注健身和运动装备的年轻人"
                          " (matched by meaning, not word for word)")
    exclude: list[str] = _f(list, "words whose posts do not count towards this target (e.g. 招聘 for a job-ad flood)")


@dataclass
class TemplateSettings:
    name: str = _f(None, "template name (reports group by it)")
    audience: str = _f("*", "audience name this template is for, or * for any")
    kind: Literal["reply", "repost", "group_reply"] = _f("reply", "reply | repost | group_reply")
    variants: list[str] = _f(list, "texts; placeholders {nickname} {topic} {keyword} {audience} {phrase} {tip}",
                             check_variants)


@dataclass
class LibraryEntrySettings:
    id: str = _f(None, "short name of the entry (reports and the review card show it)")
    audience: str = _f("*", "target audience it is for ([[audiences]] name), or * for any")
    kind: Literal["tip", "answer", "resource"] = _f("tip", "tip | answer | resource")
    text: str = _f(None, "one or two sentences in the brand's voice; no links unless you mean them")
    keywords: list[str] = _f(list, "words that mark a post it fits (matching also uses the text's meaning)")


@dataclass
class EngagementSettings:
    max_touches_per_user: int = _f(1, "touches per target user per window", check_positive)
    window_days: int = _f(7, "the window for the per-user cap and repeated text", check_positive)
    daily_cap: int = _f(30, "actions per sending account per day", check_positive)
    quiet_hours: str = _f("23:00-08:00", "never schedule inside these hours (local time)", check_quiet_hours)
    timezone: str = _f("Asia/Shanghai", "time zone for quiet and active hours")
    min_spacing_s: float = _f(300.0, "minimum seconds between two sends", check_non_negative)
    spacing_jitter_s: float = _f(120.0, "random extra spacing", check_non_negative)
    max_post_age_days: int = _f(7, "only engage with posts newer than this", check_positive)
    deny_keywords: list[str] = _f(list, "never engage with posts containing these")
    blocklist: list[str] = _f(list, "platform user ids never to engage")
    max_length: int = _f(140, "draft length limit in characters (Weibo: 140)", check_positive)
    send_mode: str = _f("dry-run", "dry-run | manual | the send mode of a platform adapter (the error for an unknown"
                        " name lists them)")
    send_source: str = _f("", "the [[sources]] name that sends (needs a token for weibo-api)")
    templates: list[TemplateSettings] = _f(list, "reply templates")
    library: list[LibraryEntrySettings] = _f(list, "content library: tips, answers, resources per target audience")
    hourly_cap: int = _f(10, "actions per sending account per rolling hour (Weibo limits writes per hour)", check_positive)
    target_audiences: list[str] = _f(list, "audience names to engage (empty = every active audience)")
    target_tiers: list[str] = _f(lambda: ["leader", "engaged", "potential"], "tiers to engage: leader | engaged | potential")
    min_relevance: float = _f(0.2, "act only on users whose relevance to a declared [[audiences]] target is at least"
                              " this (without targets: their audience membership score)", check_unit)
    engage_off_target: bool = _f(False, "also engage clusters that match no declared target (they are reported either way)")
    reposts: bool = _f(True, "plan reposts with a comment (转发+评论) for strong posts by leaders and engaged prospects")
    repost_min_interactions: int = _f(30, "a post needs at least this many likes + 2x(comments + reposts) to be reposted",
                                      check_non_negative)
    repost_share: float = _f(0.3, "reposts are at most this share of a planning run's replies and reposts", check_unit)
    max_items_per_plan: int = _f(50, "most items waiting for review: plan tops the queue up to this", check_positive)
    follow_suggestions: bool = _f(True, "suggest (never send) follows of opinion leaders for a person to do by hand")
    max_send_attempts: int = _f(3, "attempts per item before it is marked failed (unknown outcomes are reconciled first)", check_positive)
    worklist_dir: str = _f("worklist", "folder for the manual-mode worklist (CSV and HTML)")


@dataclass
class DraftingSettings:
    builtin: bool = _f(True, "offer the built-in drafter's replies (post kind, key phrases, library) beside templates")
    drafter: str = _f("builtin", "'builtin', or 'llm' to ask an OpenAI-compatible chat-completions endpoint first"
                      " (the built-in drafter stays the fallback)", check_drafter)
    base_url: str = _f("", "LLM API root, e.g. https://api.deepseek.com/v1 or http://127.0.0.1:11434/v1 (Ollama)")
    model: str = _f("", "model name, e.g. deepseek-chat, qwen-plus, moonshot-v1-8k, qwen2.5:7b")
    api_key_env: str = _f("", "environment variable holding the API key (empty = none, for a local server)")
    timeout_s: float = _f(20.0, "per-request timeout; a timeout falls back to the built-in drafter", check_positive)
    temperature: float = _f(0.7, "sampling temperature", check_non_negative)
    max_tokens: int = _f(200, "most tokens the model may answer with", check_positive)
    brand_voice: str = _f("", "how the brand speaks, given to the model (e.g. 亲切、专业、不推销)")
    allow_links: bool = _f(False, "let a model's draft contain links")
    allow_mentions: bool = _f(False, "let a model's draft contain @mentions")


@dataclass
class AnalysisSettings:
    k: str | int = _f("auto", "number of audiences, or 'auto'", check_k)
    min_posts: int = _f(1, "users with fewer posts are not clustered", check_non_negative)
    leaders_share: float = _f(0.15, "share of an audience tiered as opinion leaders", check_non_negative)
    engaged_share: float = _f(0.35, "share tiered as engaged prospects", check_non_negative)
    user_dict: list[str] = _f(list, "extra words for jieba to keep whole")
    encoder: str = _f("auto", "profile features: 'words' (jieba TF-IDF), 'semantic' (jieba TF-IDF plus a multilingual"
                      " sentence-embedding model, better on short posts, about 100 posts/s once per post), or 'auto'"
                      " (semantic when the model is installed and at most semantic_max_posts are stored)",
                      check_encoder)
    semantic_max_posts: int = _f(20_000, "with encoder 'auto', the most stored posts for which the semantic encoder is"
                                 " used (its first run embeds every post once)", check_positive)


@dataclass
class ScheduleSettings:
    analyze: str = _f("0 * * * *", "when `run` re-analyses", check_schedule)
    plan: str = _f("15 * * * *", "when `run` plans", check_schedule)
    send: str = _f("*/10 * * * *", "when `run` sends approved actions (only if sending is configured)", check_schedule)
    misfire_grace_s: int = _f(600, "a job late by less than this still runs", check_positive)


@dataclass
class ReportSettings:
    cjk_font: str = _f("", "font file with Chinese glyphs for charts; empty = find one (fonts-wqy-microhei, Noto CJK)")
    map_max_points: int = _f(5000, "most users drawn on the audience map (a sample beyond that)", check_positive)
    pseudonym_key_env: str = _f("HUAXIANG_PSEUDONYM_KEY", "environment variable holding the key for --pseudonymise "
                                "(else a key file beside the database)")
    raw_csv: bool = _f(False, "write CSV cells (exports, worklist) exactly as stored; by default a cell starting with"
                       " = + - @ tab or CR gets a leading ' so spreadsheets never run it as a formula")


UI_LANGUAGES = ("zh", "en")


def check_language(value: str) -> str | None:
    return None if value in UI_LANGUAGES else f"must be one of {', '.join(UI_LANGUAGES)}, got {value!r}"


@dataclass
class UiSettings:
    language: str = _f("zh", "language of the review page, the report and export headers: zh (简体中文) | en",
                       check_language)


@dataclass
class ReviewSettings:
    session_hours: float = _f(12.0, "a review page sign-in lasts this many hours", check_positive)
    second_approval: bool = _f(False, "replies need two different approvers before they can be sent")
    undo_seconds: int = _f(10, "how long a decision on the review page can be undone", check_positive)
    max_body_bytes: int = _f(1_000_000, "largest request body the review API accepts", check_positive)


@dataclass
class Settings:
    database: DatabaseSettings = _f(DatabaseSettings)
    logging: LoggingSettings = _f(LoggingSettings)
    sources: list[SourceSettings] = _f(list)
    queries: list[QuerySettings] = _f(list)
    audiences: list[AudienceSettings] = _f(list)
    engagement: EngagementSettings = _f(EngagementSettings)
    drafting: DraftingSettings = _f(DraftingSettings)
    analysis: AnalysisSettings = _f(AnalysisSettings)
    schedule: ScheduleSettings = _f(ScheduleSettings)
    report: ReportSettings = _f(ReportSettings)
    ui: UiSettings = _f(UiSettings)
    review: ReviewSettings = _f(ReviewSettings)
    # Where the settings came from ("<defaults>" when no file was found);
    # not a config key, so the loader never reads it from TOML.
    origin: str = field(default="<defaults>", metadata={"internal": True})

    def source(self, name: str) -> SourceSettings:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    def query(self, name: str) -> QuerySettings:
        for q in self.queries:
            if q.name == name:
                return q
        raise KeyError(name)


# The allowed range of every number a config may set (inclusive). The loader
# refuses a value outside it naming the key and the range, and refuses nan and
# infinities everywhere: a huge window_days or spacing_jitter_s = inf would
# otherwise pass and crash date arithmetic in every later plan or send.
# A numeric key missing here still gets the generic bounds in the loader.
NUMBER_RANGES: dict[type, dict[str, tuple[float, float]]] = {
    DatabaseSettings: {"busy_timeout_ms": (1, 3_600_000)},
    LoggingSettings: {"max_bytes": (1_000, 10**12), "backups": (0, 1_000)},
    SourceSettings: {
        "min_interval_s": (0, 86_400), "jitter_s": (0, 3_600), "timeout_s": (0.1, 3_600), "max_retries": (0, 100),
        "author_pages": (0, 1_000), "comment_pages": (0, 1_000), "backoff_s": (0, 86_400),
        "max_backoff_s": (0, 7 * 86_400), "page_retries": (0, 100), "block_cooldown_s": (0, 30 * 86_400),
        "max_cooldown_s": (0, 365 * 86_400), "author_budget": (0, 1_000_000),
    },
    QuerySettings: {"max_pages": (1, 10_000)},
    AudienceSettings: {"priority": (0, 1_000_000)},
    EngagementSettings: {
        "max_touches_per_user": (1, 1_000), "window_days": (1, 3_650), "daily_cap": (1, 100_000),
        "min_spacing_s": (0, 86_400), "spacing_jitter_s": (0, 86_400), "max_post_age_days": (1, 3_650),
        "max_length": (1, 100_000), "hourly_cap": (1, 100_000), "min_relevance": (0, 1),
        "max_items_per_plan": (1, 100_000), "max_send_attempts": (1, 100),
        "repost_min_interactions": (0, 10**9), "repost_share": (0, 1),
    },
    DraftingSettings: {"timeout_s": (0.1, 600), "temperature": (0, 2), "max_tokens": (1, 100_000)},
    ReviewSettings: {"session_hours": (0.01, 24 * 365), "undo_seconds": (0, 3_600), "max_body_bytes": (1_000, 10**9)},
    AnalysisSettings: {"k": (2, 1_000), "min_posts": (0, 1_000_000), "leaders_share": (0, 1), "engaged_share": (0, 1),
                       "semantic_max_posts": (1, 10**9)},
    ScheduleSettings: {"misfire_grace_s": (1, 7 * 86_400)},
    ReportSettings: {"map_max_points": (1, 1_000_000)},
}
