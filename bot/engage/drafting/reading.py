"""Read a post the way a person replying to it would: what kind of post it
is, its whole key phrases and its #topics#.

Why whole jieba words ranked by how rare they are: a reply that quotes a
fragment ("完腿") reads as a machine, and one that quotes an everyday word
("今天", "开心") fits any post. A phrase is always a word jieba cut from the
post itself, spelled as the post spells it; how specific it is comes from
its document frequency over the posts being planned (``PhraseStats``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from nlp.clean import clean_post, extract_topics

POST_KINDS = ("question", "complaint", "progress", "review", "share", "statement")

# First match wins, in this order: a question that complains is still a question.
_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("question", re.compile(r"[？?]|^\s*求|求推荐|求.{1,6}(?:计划|链接|攻略|店名|参数|方法)|求助|求问|请问|有没有人|有人知道|怎么办|怎么选|哪家好|哪款|推荐一下|大家觉得|求攻略|求链接")),
    ("complaint", re.compile(r"踩雷|失望|心态崩|崩了|吐槽|太难了|难受|翻车|后悔|无语|气死|小问题|不太行|歪了|被坑")),
    ("progress", re.compile(r"打卡|坚持.{0,10}第\s*\d+\s*天|第\s*\d+\s*天|进步|突破|终于|成型|瘦了|空瓶|连胜|通关|完成了|第一次")),
    ("review", re.compile(r"探店|探了|测评|评测|开箱|上手|回购|对比了|安利|种草|好喝|表现|出色|风景绝了|推荐一个|专门跑一趟")),
    ("share", re.compile(r"分享|整理|攻略|计划|参数|经验|教程|清单|小技巧|心得")),
)

# Everyday words that say nothing about what the post is about: never a key phrase.
FILLER = frozenset("""
今天 明天 昨天 昨晚 周末 早上 晚上 中午 下午 下班 下班后 上班 终于 最近 刚刚 这周 这次 一下 一次 一个 真的 还是
开心 满足 值得 推荐 大家 心情 治愈 继续 加油 记录 下次 感觉 有点 但值 不错 还要 关键 重要 真香 太爽 分享 一起
收获 满满 有趣 很多 遇到 路上 一定 这个 那个 我们 你们 自己 时候 出来 起来 小时 一小时 三个 五把 第一次 专门
太爽了 太满足了 有被治愈到 心情很好 下次还来 有点累但值得 真香 也不错 很重要 是关键 站起来
无数次 空瓶 技巧 小技巧 跟着 新买 练练 预期 总结 过程 看起来 太帅 下单 超出 出预期 经验 说一下 具体 评论区
坚持 进步 突破 打卡 成型 完成 练习 训练 新手 续命 计划 一趟 跑一趟
有点累 有点 感受 知道 有没有 看到 觉得 喜欢 问题 关键 大家 朋友 东西 事情 时间 地方 样子 说说 看看 试试 出色 心态
""".split())

_NUM = re.compile(r"^[\d.%]+$")
_PUNCT = re.compile(r"[^\w]")
_DURATION = re.compile(r"^[一二两三四五六七八九十几半每\d]+个?(?:月|天|周|年|次|小时|分钟|公里)$")
_COUNTED = re.compile(r"^[一二两三四五六七八九十几每这那哪][个家周杯次天种款把些位条下点]$")


@dataclass
class PostReading:
    """What a post says, as a replier sees it."""

    text: str                                   # the post as written
    kind: str                                   # one of POST_KINDS
    phrases: list[str] = field(default_factory=list)   # whole key phrases, most specific first
    topics: list[str] = field(default_factory=list)    # #topics# without the marks
    words: list[str] = field(default_factory=list)     # every content word (for library matching)
    nouns: list[str] = field(default_factory=list)     # the phrases that are nouns (things, not doings)

    @property
    def phrase(self) -> str:
        return self.phrases[0] if self.phrases else ""

    def says(self, pattern: str) -> bool:
        """Whether the post already says this (so a question about it would be answered already)."""
        return re.search(pattern, self.text or "") is not None


# Parts of speech a key phrase may have: nouns, names, places, verbal nouns,
# English words; plain verbs count for less (拉伸, 冲 are things people do).
_NOUNISH = ("n", "nr", "ns", "nt", "nz", "nrt", "nrfg", "vn", "an", "eng", "j", "l")


@lru_cache(maxsize=4)
def _pos_cutter(user_words: tuple[str, ...]):
    """jieba's part-of-speech cutter over the project's tokenizer (with the
    campaign's words). Used without HMM: HMM guesses new words from single
    characters, which is exactly how fragments like 完腿 are born."""
    import jieba.posseg

    from nlp.tokenize import _jieba_with, usable_dict_word

    words = tuple(sorted({w for w in (usable_dict_word(x) for x in user_words) if w}))
    tagger = jieba.posseg.POSTokenizer(_jieba_with(words))
    # jieba hands a tokenizer's user-word tags to the first tagger built over it and
    # then forgets them; the tokenizer is memoised and outlives this cache's entries,
    # so a later tagger would tag the campaign's words 'x'. Each tagger gets them itself.
    tagger.word_tag_tab.update(dict.fromkeys(words, "n"))
    return tagger


# An analysis keyword that begins with one of these is usually a verb's
# complement glued to its object by jieba's HMM (练完腿 -> 完腿), not a word.
_GLUE = "完了着过得的地把被给在就也都又再才还很太这那"
_GLUE_END = "的了着过得地吗呢吧啊呀么"


def tagged_words(text: str, user_words: Iterable[str] = (), prefer: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(word, part of speech) for the post's words of two or more characters,
    minus stopwords and numbers; topics, mentions and emoticons are left out
    (topics are read separately).

    Cut without HMM, so every word is a dictionary word, a campaign word
    (``user_words``) or one the analysis found (``prefer``, the audience
    keywords: 卧推 in a fitness audience) unless that one starts with a glued
    particle."""
    from nlp.tokenize import default_stopwords

    body = clean_post(text or "", keep_topic_words=False).text
    stop = default_stopwords()
    extra = set(user_words) | {w for w in prefer if len(w) >= 2 and w[0] not in _GLUE}
    out = []
    for w, flag in _pos_cutter(tuple(sorted(extra))).cut(body, HMM=False):
        w = w.strip()
        if len(w) >= 2 and not _NUM.match(w) and w not in stop and not _PUNCT.search(w):
            out.append((w, flag))
    return out


def content_words(text: str, user_words: Iterable[str] = ()) -> list[str]:
    return [w for w, _ in tagged_words(text, user_words)]


def post_kind(text: str) -> str:
    """question | complaint | progress | review | share | statement."""
    body = re.sub(r"#[^#\n]{1,64}#|\[[^\]\s]{1,8}\]|@\S+", " ", text or "")
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(body):
            return kind
    return "statement"


def recurring_new_words(texts: Iterable[str], user_words: Iterable[str] = (), min_posts: int = 3) -> set[str]:
    """Words jieba's HMM finds that its dictionary lacks (深蹲, 私教, 手冲),
    kept when at least ``min_posts`` posts use them and they neither start
    nor end with a glued particle (完腿 is 练完 + 腿, not a word)."""
    from nlp.tokenize import Tokenizer

    tok = Tokenizer(user_words)
    known = _pos_cutter(tuple(sorted(set(user_words)))).tokenizer.FREQ
    seen: Counter[str] = Counter()
    for text in texts:
        body = clean_post(text or "", keep_topic_words=False).text
        seen.update({w for w in tok(body) if len(w) >= 2 and not known.get(w) and not _NUM.match(w)
                     and w[0] not in _GLUE and w[-1] not in _GLUE_END and not _PUNCT.search(w)})
    return {w for w, n in seen.items() if n >= min_posts}


class PhraseStats:
    """Document frequency of words over a batch of posts: a word most posts
    use is filler, a word few use is what this post is about."""

    def __init__(self, docs: Iterable[Iterable[str]] = ()) -> None:
        self.df: Counter[str] = Counter()
        self.n = 0
        for words in docs:
            self.add(words)

    def add(self, words: Iterable[str]) -> None:
        self.n += 1
        self.df.update(set(words))

    def idf(self, word: str) -> float:
        return math.log((1 + self.n) / (1 + self.df.get(word, 0))) + 1.0


def _as_written(word: str, text: str) -> str | None:
    """The word spelled as in the post (jieba saw lower-cased, NFKC text)."""
    if word in text:
        return word
    m = re.search(re.escape(word), text, re.IGNORECASE)
    return m.group(0) if m else None


def read_post(text: str, topics: Iterable[str] | None = None, stats: PhraseStats | None = None,
              user_words: Iterable[str] = (), prefer: Iterable[str] = ()) -> PostReading:
    """Kind, key phrases (rarest first, whole words of the post) and topics.

    ``user_words`` are kept whole by jieba and count as nouns; ``prefer``
    (the audience's keywords) only counts as nouns, since an analysis keyword
    may be a fragment a tokenizer with HMM made up."""
    text = text or ""
    found_topics = list(dict.fromkeys([t for t in (topics or []) if t] + extract_topics(text)))
    user_words = tuple(user_words)
    preferred = set(user_words) | set(prefer)
    campaign = set(user_words)
    topic_words = set(found_topics)
    tagged = tagged_words(text, user_words, prefer)
    words = [w for w, _ in tagged]
    seen: dict[str, float] = {}
    nouns: set[str] = set()
    true_nouns: set[str] = set()      # nouns by jieba's tag (not by being a keyword): what noun phrases are made of
    for i, (w, flag) in enumerate(tagged):
        if w in FILLER or _COUNTED.match(w) or _DURATION.match(w) or w in seen or w[0] in "这那哪" or w[-1] in "了吗呢吧":
            continue
        if w + "超话" in text:          # the 超话 a post was posted in, not what it says
            continue
        if not (flag in _NOUNISH or flag == "v") or w.endswith("超话") or w in topic_words:
            continue
        spelled = _as_written(w, text)
        if spelled is None or spelled in seen:
            continue
        weight = stats.idf(w) if stats is not None and stats.n else 1.0
        # A reply quotes the thing the post is about: nouns first, verbs last.
        tagged_noun = flag.startswith("n") or flag in ("eng", "j")
        if tagged_noun and (w in campaign or w not in preferred):   # an analysis keyword is tagged n when added
            true_nouns.add(spelled)
        noun = tagged_noun or w in preferred
        weight *= 1.0 if noun else (0.6 if flag == "vn" else 0.35)
        weight *= 1.3 if w in campaign else 1.0
        if noun:
            nouns.add(spelled)
        # Longer words are more specific; an earlier word is likelier the subject.
        seen[spelled] = weight * (1 + 0.15 * min(len(w), 4)) - 0.01 * i
    for a, b in zip(tagged, tagged[1:]):
        # A noun phrase: two nouns side by side in the post (燕麦 + 拿铁, 手机 + 摄影) read as one thing.
        phrase = a[0] + b[0]
        if a[0] in true_nouns and b[0] in true_nouns and len(phrase) <= 6 and phrase in text and phrase not in seen:
            seen[phrase] = max(seen[a[0]], seen[b[0]]) + 0.01
            nouns.add(phrase)
    phrases = sorted(seen, key=lambda w: -seen[w])
    return PostReading(text=text, kind=post_kind(text), phrases=phrases, topics=found_topics, words=words,
                       nouns=[p for p in phrases if p in nouns])
