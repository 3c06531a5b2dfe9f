"""Random sequences of plan / approve / edit / reject / opt-out / send / crash.

Whatever the order, at the moment any request reaches the platform:
- the item is approved by a named person and already committed as ``sending``;
- its target has not opted out and is not blocklisted;
- no earlier request carried the same item (never two sends of one item);
- the per-user, daily and hourly caps hold counting this request.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings as hsettings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import approver
from config.times import to_stored
from bot.engage import outcomes, policy, queue_ops
from bot.engage.planner import run_plan
from bot.engage.sender import run_send
from storage import engagement as store
from storage.db import connect, transaction
from test_queue_world import NOW, TEMPLATES, FakePlatform, SimulatedCrash, build_world, engagement_settings

USERS = [f"u{i}" for i in range(6)]
EDITS = ["谢谢分享，很受用", "说得好，收藏了", "谢谢分享，很受用"]   # a repeat, to meet the identical-text rule


class CheckingPlatform(FakePlatform):
    """Checks every invariant at the instant a write arrives, against a second connection."""

    def __init__(self, machine: "SendingMachine"):
        super().__init__()
        self.machine = machine

    def _write(self, kind, post_pid, text, key):
        # Problems are recorded, not raised: the sender rightly treats any exception
        # from a request as an unknown outcome, which would hide them.
        m = self.machine
        item_id = int(key.rsplit("-", 1)[1])
        item = store.get_item(m.observer, item_id)            # what another process sees: committed state
        problems = m.problems
        if item.status != "sending":
            problems.append(f"item {item_id} not committed as sending: {item.status}")
        if not policy.is_named_person(item.approved_by):
            problems.append(f"item {item_id} approved by {item.approved_by!r}")
        if item.text != text:
            problems.append(f"item {item_id} sent with other text")
        if item_id in m.sent_items or any(c["key"] == key for c in self.comments):
            problems.append(f"item {item_id} requested again after reaching the platform")
        if item.target_uid in m.opted_out:
            problems.append(f"{item.target_uid} opted out")
        if item.target_uid in m.blocked:
            problems.append(f"{item.target_uid} is blocklisted")
        problems.extend(m.cap_problems(item.target_uid))
        before = len(self.comments)
        try:
            return super()._write(kind, post_pid, text, key)    # may raise (timeout / crash) after applying
        finally:
            if len(self.comments) > before:                     # it reached the platform: a touch
                m.sent_items.add(item_id)
                m.touches.append((item.target_uid, m.now))

    def find_own_reply(self, post_pid, text):
        return super().find_own_reply(post_pid, text)


class SendingMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="hx-prop-"))
        self.db = connect(self.dir / "p.db")
        approver(self.db, "alice", "bob", "carol", "dave", "frank")   # the people who decide below
        self.observer = connect(self.dir / "p.db")
        build_world(self.db, users=len(USERS), posts_per_user=2)   # too few posts to infer active hours: slots start now
        self.settings = engagement_settings(templates=[TEMPLATES[0]], max_touches_per_user=1, window_days=2,
                                            daily_cap=3, hourly_cap=2, max_post_age_days=30)
        # Planned under looser caps than it is sent under (the config was tightened after
        # planning), so the send-time re-checks are what keeps the caps.
        self.plan_settings = engagement_settings(templates=[TEMPLATES[0]], max_touches_per_user=3, window_days=2,
                                                 daily_cap=10, hourly_cap=10, max_post_age_days=30)
        self.now = NOW
        self.platform = CheckingPlatform(self)
        self.sent_items: set[int] = set()          # items whose request reached the platform
        self.touches: list[tuple[str, object]] = []  # (uid, time) of requests that reached it
        self.opted_out: set[str] = set()
        self.blocked: set[str] = set()
        self.problems: list[str] = []

    def teardown(self):
        self.db.close()
        self.observer.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cap_problems(self, uid: str) -> list[str]:
        e = self.settings.engagement
        t = self.now
        out = []
        recent_user = [x for u, x in self.touches if u == uid and x > t - timedelta(days=e.window_days)]
        if len(recent_user) >= e.max_touches_per_user:
            out.append(f"user cap exceeded for {uid}")
        start, end = policy.local_day_bounds(self.settings, t)
        if sum(1 for _, x in self.touches if start <= x < end) >= e.daily_cap:
            out.append("daily cap exceeded")
        if sum(1 for _, x in self.touches if x > t - timedelta(hours=1)) >= e.hourly_cap:
            out.append("hourly cap exceeded")
        return out

    def _ids(self, status: str) -> list[int]:
        return [i.id for i in store.items_with_status(self.db, (status,))]

    @initialize()
    def first_plan(self):
        run_plan(self.db, self.plan_settings, self.now)

    @rule()
    def plan(self):
        run_plan(self.db, self.plan_settings, self.now)

    @rule(data=st.data(), by=st.sampled_from(["alice", "bob", "carol", "huaxiang/planner", ""]))
    def approve(self, data, by):
        ids = self._ids("pending") + self._ids("failed")
        if not ids:
            return
        chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True))
        try:
            queue_ops.approve(self.db, chosen, by)
        except queue_ops.QueueError:
            assert not policy.is_named_person(by)

    @rule(data=st.data())
    def reject(self, data):
        ids = self._ids("pending")
        if ids:
            queue_ops.reject(self.db, [data.draw(st.sampled_from(ids))], "carol", "no")

    @rule(data=st.data(), text=st.sampled_from(EDITS))
    def edit(self, data, text):
        ids = self._ids("pending") + self._ids("approved")
        if ids:
            queue_ops.edit(self.db, data.draw(st.sampled_from(ids)), text, "dave", self.settings)

    def _some_user(self, data) -> str:
        """Mostly someone with an approved item: that is where a late opt-out matters."""
        waiting = [store.get_item(self.db, i).target_uid for i in self._ids("approved")]
        return data.draw(st.sampled_from(waiting + USERS[:2] if waiting else USERS))

    @rule(data=st.data(), via_table_only=st.booleans())
    def opt_out(self, data, via_table_only):
        uid = self._some_user(data)
        with transaction(self.db):
            if via_table_only:   # as if written by another process: open items stay, the sender must re-check
                store.add_optout(self.db, "weibo", uid, "reply", "别再@我", None, "huaxiang/outcomes", to_stored(self.now))
            else:
                outcomes.record_opt_out(self.db, "weibo", uid, "不要打扰", None, "huaxiang/outcomes", "reply",
                                        to_stored(self.now))
        self.opted_out.add(uid)

    @rule(data=st.data())
    def block(self, data):
        uid = self._some_user(data)
        with transaction(self.db):
            store.add_block(self.db, "weibo", uid, "test", "erin", to_stored(self.now))
        self.blocked.add(uid)

    @rule(fault=st.sampled_from([None, None, "timeout_applied", "timeout_lost", "refuse", "crash"]))
    def send(self, fault):
        self.platform.mode = fault
        try:
            run_send(self.db, self.settings, self.now, platform=self.platform, dry_run=False)
        except SimulatedCrash:
            pass
        finally:
            self.platform.mode = None

    @rule()
    def approve_everything(self):
        queue_ops.approve(self.db, self._ids("pending"), "frank")

    @rule(fault=st.sampled_from([None, "timeout_applied", "timeout_lost", "refuse", "crash"]),
          hours=st.sampled_from([0.5, 2, 12]))
    def approve_everything_wait_and_send(self, fault, hours):
        """A busy reviewer: everything pending approved, time passes, the sender runs."""
        queue_ops.approve(self.db, self._ids("pending"), "frank")
        self.advance(hours)
        self.send(fault)

    @rule(hours=st.sampled_from([0.1, 0.5, 1, 5, 24, 60]))
    def advance(self, hours):
        self.now = self.now + timedelta(hours=hours)

    @invariant()
    def every_request_was_allowed(self):
        assert not self.problems, self.problems

    @invariant()
    def no_item_sent_twice(self):
        assert all(n == 1 for n in self.platform.sends_per_key().values())

    @invariant()
    def sent_items_are_sent_or_settling(self):
        for item_id in self.sent_items:
            assert store.get_item(self.db, item_id).status in ("sent", "unknown", "sending")

    @invariant()
    def statuses_only_move_along_the_machine(self):
        for row in self.db.execute("SELECT from_status, to_status FROM audit_log WHERE item_id IS NOT NULL"):
            frm, to = row
            assert frm is None or frm == to or to in queue_ops.TRANSITIONS[frm], row


TestSendingMachine = SendingMachine.TestCase
TestSendingMachine.settings = hsettings(max_examples=40, stateful_step_count=30, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow], derandomize=True)
