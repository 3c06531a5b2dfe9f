"""The sandbox's people answer a comment by what it says (issue 13): likelier
when it speaks to their post, rarely when it fits any post, never when we
said it before; likes and follow-backs come from the comment that earned them."""

from __future__ import annotations

from bot.find.sandbox import start_sandbox
from bot.find.sandbox.server import comment_quality
from bot.engage.drafting.reading import read_post


def test_comment_quality():
    post = "今天练了一小时深蹲，鸡胸肉是关键 #健身打卡#"
    assert comment_quality(post, "深蹲练到这一步真不容易！", False) == "answers"
    assert comment_quality(post, "说得很好，很有用！", False) == "generic"
    assert comment_quality(post, "深蹲练到这一步真不容易！", True) == "repeated"


def _post(sb, text, mid, sent=None):
    status, obj, _ = sb.route("POST", "/2/comments/create.json", {}, {"access_token": ["t"], "id": [mid],
                                                                        "comment": [text]}, {})
    assert status == 200
    return obj


def test_answers_follow_what_the_comment_says():
    with start_sandbox(seed=1, n_users=400) as sb:
        w = sb.world
        mids = [m for m in w.all_desc if not w.posts[m].repost_of][:300]
        replied = {"answers": 0, "generic": 0}
        for i, mid in enumerate(mids):
            reading = read_post(w.posts[mid].text)
            if not reading.phrases:
                continue
            before = len(w.replies_to_us)
            if i % 2:
                _post(sb, f"{reading.phrase}这点说得很对，第{i}条想问下怎么安排？", mid)
                replied["answers"] += len(w.replies_to_us) > before
            else:
                _post(sb, f"说得很好，很有用！第{i}条", mid)
                replied["generic"] += len(w.replies_to_us) > before
        assert replied["answers"] > 3 * replied["generic"] > 0
        # the same words again, on any post: nobody answers
        before = len(w.replies_to_us)
        for mid in mids[:40]:
            _post(sb, "说得很好，很有用！第0条", mid)
        assert len(w.replies_to_us) == before
        # likes land on our comments, and only some authors follow back
        assert any(c["likes"] for c in w.our_comments)
        assert 0 < len(w.followers_of_us) < len(mids)
