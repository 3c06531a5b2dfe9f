"""The sandbox's deterministic generated world: users, posts, comments.

Why generated and deterministic: crawler reliability tests need a platform
that behaves the same on every run (same seed, same world), and audience
quality needs ground truth - every user's true community is known here and
nowhere in the payloads. Post times are relative to the moment the world is
built (the server's clock), so posts always look fresh to a planner.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.find.sandbox import vocab
from bot.find.sandbox.vocab import COMMUNITIES, Community
from bot.find.sources.weibo_parse import CHINA

DEFAULT_USERS = 2400
ME_UID = "7700000001"
ME_NAME = "画像品牌号"
_MID_BASE = 4_800_000_000_000_000
_OUR_ID_BASE = 4_990_000_000_000_000


def stable_hash(*parts: object) -> int:
    """A hash that is the same in every process (``hash()`` is salted)."""
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def group_id(community: str) -> str:
    """The community's super-topic id: 32 hex digits, the same for every seed."""
    return hashlib.md5(f"huaxiang-sandbox-supertopic:{community}".encode("utf-8")).hexdigest()


@dataclass
class SUser:
    uid: str
    name: str
    community: str
    second: str | None
    bio: str
    tags: list[str]
    followers: int
    following: int
    verified: bool
    verified_reason: str
    gender: str
    city: str
    hours: tuple[int, ...]
    mids: list[str] = field(default_factory=list)        # newest first


@dataclass
class SPost:
    mid: str
    uid: str
    ts: float
    community: str
    segments: list[tuple[str, str]]                      # (text|topic|mention|emoticon|br, value)
    topics: list[str]
    group: str | None = None
    repost_of: str | None = None
    deleted_original: bool = False
    likes: int = 0
    reposts: int = 0
    n_comments: int = 0
    pics: int = 0
    pics_object: bool = False
    long_extra: str | None = None
    client: str = ""
    by_us: bool = False

    @property
    def text(self) -> str:
        return plain_text(self.segments)


def plain_text(segments: list[tuple[str, str]]) -> str:
    out = []
    for kind, value in segments:
        if kind == "topic":
            out.append(f"#{value}#")
        elif kind == "mention":
            out.append(f"@{value}")
        elif kind == "br":
            out.append("\n")
        else:
            out.append(value)
    return "".join(out)


class World:
    """All users and posts. Thread-safe for the server's concurrent reads and writes."""

    def __init__(self, seed: int = 0, n_users: int = DEFAULT_USERS, now: float | None = None):
        self.seed = seed
        self.now = time.time() if now is None else now
        self.lock = threading.RLock()
        self.communities: dict[str, Community] = {c.name: c for c in COMMUNITIES}
        self.groups: dict[str, str] = {group_id(c.name): c.name for c in COMMUNITIES}
        self.users: dict[str, SUser] = {}
        self.members: dict[str, list[str]] = {c.name: [] for c in COMMUNITIES}
        self.posts: dict[str, SPost] = {}
        self.all_desc: list[str] = []
        self.by_topic: dict[str, list[str]] = {}
        self.by_group: dict[str, list[str]] = {g: [] for g in self.groups}
        self._search_cache: dict[str, list[str]] = {}
        self._comments: dict[str, list[dict]] = {}
        self.our_comments: list[dict] = []              # comments we wrote (Open API shape)
        self.replies_to_us: list[dict] = []             # their replies to our comments
        self.followers_of_us: list[str] = []
        self._next_our_id = _OUR_ID_BASE
        rng = random.Random(seed)
        self._make_users(rng, n_users)
        self._make_posts(rng)

    # -- generation --------------------------------------------------------
    def _make_users(self, rng: random.Random, n: int) -> None:
        names = [c.name for c in COMMUNITIES]
        for i in range(n):
            c = self.communities[names[i % len(names)]]
            second = rng.choice([x for x in names if x != c.name]) if rng.random() < 0.3 else None
            uid = str(5_100_000_000 + i * 3571 + rng.randrange(3571))
            name = rng.choice(c.name_bits) + rng.choice(vocab.NAME_NOUNS)
            if rng.random() < 0.6:
                name += str(rng.randrange(10, 9999))
            tags = rng.sample(c.tags, rng.randint(2, 4))
            if second and rng.random() < 0.5:
                tags.append(rng.choice(self.communities[second].tags))
            followers = min(5_000_000, int(rng.paretovariate(1.1) * 40))
            verified = followers > 50_000 and rng.random() < 0.6
            peak = rng.choice(c.hours)
            hours = tuple(sorted({(peak + d) % 24 for d in (rng.randint(-1, 1), 0, rng.randint(-2, 2))}))
            user = SUser(
                uid=uid, name=name, community=c.name, second=second,
                bio=rng.choice(c.bios) + ("｜" + rng.choice(self.communities[second].bios) if second and rng.random() < 0.3 else ""),
                tags=list(dict.fromkeys(tags)), followers=followers, following=rng.randint(30, 900),
                verified=verified, verified_reason=f"{c.name}博主" if verified else "",
                gender="f" if rng.random() < c.female_share else "m", city=rng.choice(vocab.CITIES), hours=hours,
            )
            self.users[uid] = user
            self.members[c.name].append(uid)

    def _post_time(self, rng: random.Random, user: SUser) -> float:
        days_back = min(20, int(rng.expovariate(1 / 3.0)))
        hour = rng.choice(user.hours)
        base = datetime.fromtimestamp(self.now, CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
        when = base - timedelta(days=days_back) + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
        ts = when.timestamp()
        if ts > self.now - 60:
            ts -= 86400
        return ts

    def _segments(self, rng: random.Random, c: Community, author: SUser) -> tuple[list[tuple[str, str]], list[str]]:
        act = rng.choice(c.acts).format(n=rng.choice(c.nouns), d=rng.randint(2, 300))
        body = [("text", rng.choice(vocab.OPENERS) + act)]
        if rng.random() < 0.5:
            body.append(("text", "，" + rng.choice(c.nouns) + rng.choice(("也不错", "还要再练练", "是关键", "很重要", "真香"))))
        body.append(("text", "，" + rng.choice(vocab.FEELINGS) + rng.choice(("！", "。", "～"))))
        topics: list[str] = []
        if rng.random() < 0.6:
            topics.append(c.topics[0] if rng.random() < 0.5 else rng.choice(c.topics[1:]))
            if rng.random() < 0.2:
                other = rng.choice(c.topics)
                if other not in topics:
                    topics.append(other)
        if rng.random() < 0.15 and len(self.members[c.name]) > 1:
            other = self.users[rng.choice(self.members[c.name])]
            if other.uid != author.uid:
                body.append(("text", " "))
                body.append(("mention", other.name))
                body.append(("text", " 一起吗"))
        if rng.random() < 0.4:
            body.append(("emoticon", rng.choice(vocab.EMOTICONS)))
        topic_segs = [("topic", t) for t in topics]
        segments = topic_segs + body if rng.random() < 0.5 else body + ([("text", " ")] + topic_segs if topic_segs else [])
        return segments, topics

    def _make_posts(self, rng: random.Random) -> None:
        drafts: list[SPost] = []
        for user in self.users.values():
            n_posts = 1 + min(30, int(rng.expovariate(1 / 6.0)))
            for _ in range(n_posts):
                cname = user.second if user.second and rng.random() < 0.2 else user.community
                c = self.communities[cname]
                segments, topics = self._segments(rng, c, user)
                likes = max(0, int(rng.paretovariate(1.4) * (1 + user.followers ** 0.35)) - 1)
                post = SPost(
                    mid="", uid=user.uid, ts=self._post_time(rng, user), community=cname, segments=segments,
                    topics=topics, likes=likes, reposts=int(likes * rng.random() * 0.2),
                    n_comments=min(25, max(0, int(rng.paretovariate(1.6)) - 1 + (3 if likes > 50 else 0))),
                    client=rng.choice(vocab.CLIENTS),
                )
                if rng.random() < 0.2:
                    post.group = group_id(cname)
                if rng.random() < 0.35:
                    post.pics = rng.randint(1, 4)
                    post.pics_object = rng.random() < 0.25
                r = rng.random()
                if r < 0.08:
                    post.repost_of = "pending"
                elif r < 0.12:
                    post.long_extra = "".join(rng.sample(vocab.LONG_EXTRA, rng.randint(4, 7)))
                drafts.append(post)
        drafts.sort(key=lambda p: p.ts)
        by_comm: dict[str, list[SPost]] = {c: [] for c in self.communities}
        for rank, post in enumerate(drafts):
            post.mid = str(_MID_BASE + rank * 1000 + rng.randrange(1000))
            if post.repost_of == "pending":
                earlier = by_comm[post.community]
                if earlier and rng.random() < 0.9:
                    orig = rng.choice(earlier[-200:])
                    post.repost_of = orig.mid
                    orig.reposts += 1
                else:
                    post.repost_of = str(_MID_BASE - 1000 - rank)
                    post.deleted_original = True
                post.segments = ([("text", "转发微博")] if rng.random() < 0.3 else
                                 [("text", rng.choice(self.communities[post.community].comments)),
                                  ("emoticon", rng.choice(vocab.EMOTICONS))])
                post.topics = []
            by_comm[post.community].append(post)
        for post in reversed(drafts):                    # newest first everywhere
            self._index(post, at_front=False)

    def _index(self, post: SPost, at_front: bool) -> None:
        def put(lst: list[str]) -> None:
            if at_front:
                lst.insert(0, post.mid)
            else:
                lst.append(post.mid)

        self.posts[post.mid] = post
        put(self.all_desc)
        put(self.users[post.uid].mids)
        for t in post.topics:
            put(self.by_topic.setdefault(t, []))
        if post.group:
            put(self.by_group[post.group])

    # -- queries -------------------------------------------------------------
    def true_community(self, uid: str) -> str | None:
        """Ground truth for scoring audiences; never appears in any payload."""
        user = self.users.get(str(uid))
        return user.community if user else None

    def group_of(self, community: str) -> str:
        return group_id(community)

    def topic_mids(self, topic: str) -> list[str]:
        return self.by_topic.get(topic.strip().strip("#"), [])

    def search_mids(self, q: str) -> list[str]:
        q = q.strip()
        if q.startswith("#") and q.endswith("#") and len(q) > 2:
            return self.topic_mids(q)
        with self.lock:
            hit = self._search_cache.get(q)
            if hit is None:
                needle = q.lower()
                hit = [m for m in self.all_desc if needle in self.posts[m].text.lower()]
                self._search_cache[q] = hit
            return hit

    def tag_uids(self, tag: str) -> list[str]:
        tag = tag.strip()
        hits = [u for u in self.users.values() if tag in u.tags or (tag and tag in u.bio)]
        hits.sort(key=lambda u: (-u.followers, u.uid))
        return [u.uid for u in hits]

    def comments(self, mid: str) -> list[dict]:
        """The post's comments (generated on first use, plus anything written to it)."""
        with self.lock:
            got = self._comments.get(mid)
            if got is not None:
                return got
            post = self.posts.get(mid)
            got = []
            if post is not None:
                rng = random.Random(stable_hash(self.seed, "comments", mid))
                c = self.communities[post.community]
                pool = self.members[post.community]
                for j in range(post.n_comments):
                    who = self.users[rng.choice(pool)]
                    text = rng.choice(c.comments + vocab.GENERIC_COMMENTS)
                    got.append({
                        "id": str(int(mid) * 100 + j), "uid": who.uid,
                        "text": text + (rng.choice(vocab.EMOTICONS) if rng.random() < 0.3 else ""),
                        "ts": min(self.now, post.ts + rng.randint(60, 36 * 3600)),
                        "likes": int(rng.paretovariate(2.0)) - 1,
                    })
                _thread_replies(self.seed, mid, got)
                got.sort(key=lambda x: (-x["likes"], x["id"]))
            self._comments[mid] = got
            return got

    # -- changes ----------------------------------------------------------------
    def publish(self, uid: str, text: str | None = None, topics: list[str] | None = None,
                ts: float | None = None, group: bool = False) -> SPost:
        """A new post by an existing user, newer than everything so far (for incremental tests)."""
        with self.lock:
            user = self.users[uid]
            c = self.communities[user.community]
            rng = random.Random(stable_hash(self.seed, "publish", len(self.posts)))
            if text is None:
                segments, found = self._segments(rng, c, user)
            else:
                segments, found = [("text", text)], []
            topics = list(topics) if topics is not None else found
            if topics and text is not None:
                segments = [("topic", t) for t in topics] + [("text", " ")] + segments
            newest = int(self.all_desc[0]) if self.all_desc else _MID_BASE
            post = SPost(mid=str(newest + 1000), uid=uid, ts=time.time() if ts is None else ts,
                         community=user.community, segments=segments, topics=topics,
                         group=group_id(user.community) if group else None, client="iPhone客户端")
            self._index(post, at_front=True)
            self._search_cache.clear()
            return post

    def next_our_id(self) -> str:
        with self.lock:
            self._next_our_id += 1000
            return str(self._next_our_id)

    def summary(self) -> dict:
        return {
            "seed": self.seed, "users": len(self.users), "posts": len(self.posts),
            "communities": {
                c.name: {"users": len(self.members[c.name]), "topics": list(c.topics), "group_id": group_id(c.name),
                         "group_name": f"{c.name}超话", "tags": list(c.tags)}
                for c in COMMUNITIES
            },
        }


def _thread_replies(seed: int, mid: str, comments: list[dict]) -> None:
    """About one comment in four answers an earlier top-level one (楼中楼): it gets a
    ``root``. Decided by a stable hash, so the rest of the world stays as it was."""
    last_top = None
    for c in comments:                       # in id (posting) order
        if last_top is not None and stable_hash(seed, "reply", mid, c["id"]) % 4 == 0:
            c["root"] = last_top
        else:
            last_top = c["id"]
