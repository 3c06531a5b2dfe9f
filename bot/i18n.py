"""The one message catalogue: every word the review page, the report and the
export headers show, in Simplified Chinese first and English second.

Why one table: the team reading the page is Chinese; a label written straight
into code is a label that stays English. The page gets its half of this table
from ``/api/session``; Python code calls ``t(key, lang)``. Times go through
``fmt_time`` so a card, the report and an export show the same clock (the
campaign's time zone) in the same format.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import Settings
from config.times import parse_stored

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
TIME_FORMAT = "%Y-%m-%d %H:%M"

# key -> (zh, en). Placeholders use str.format names.
MESSAGES: dict[str, tuple[str, str]] = {
    # -- page chrome
    "app.title": ("画像 审核队列", "huaxiang review queue"),
    "login.title": ("画像 登录", "huaxiang sign in"),
    "login.user": ("账号", "Account"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.bad": ("账号或密码不正确。", "That account or password is not right."),
    "login.slow": ("尝试次数过多，请 {seconds} 秒后再试。", "Too many attempts; try again in {seconds} seconds."),
    "login.token": ("访问令牌（由 huaxiang review 打印）", "Access token (printed by huaxiang review)"),
    "login.token_bad": ("令牌不正确。", "That token is not right."),
    "logout": ("退出", "Sign out"),
    "signed_in_as": ("当前账号：{name}（{role}）", "Signed in as {name} ({role})"),
    "role.viewer": ("只读", "viewer"), "role.editor": ("编辑", "editor"),
    "role.approver": ("审批", "approver"), "role.admin": ("管理员", "admin"),
    "role.token": ("令牌", "token"),
    "reviewer": ("审核人", "Reviewer"), "reviewer.placeholder": ("你的名字", "your name"),
    "filter.status": ("状态", "Status"), "filter.audience": ("人群", "Audience"), "filter.kind": ("类型", "Kind"),
    "filter.all": ("全部", "all"), "filter.search": ("搜索", "Search"),
    "filter.search.placeholder": ("搜索原帖或草稿", "search post and draft"),
    "filter.from": ("从", "From"), "filter.to": ("到", "To"), "filter.sort": ("排序", "Sort"),
    "sort.score": ("按得分", "score"), "sort.time": ("按时间", "time"), "sort.audience": ("按人群", "audience"),
    "reason": ("拒绝理由", "Reject reason"), "reason.placeholder": ("可选", "optional"),
    "check_all": ("全选本页", "check all on this page"),
    "approve_checked": ("批准所选", "Approve checked"), "reject_checked": ("拒绝所选", "Reject checked"),
    "report": ("报告", "Report"), "api": ("API", "API"),
    "help": ("快捷键：j/k 移动，x 勾选，a 批准，r 拒绝，e 编辑（Ctrl+Enter 保存，Esc 取消），u 撤销。",
             "Keys: j/k move, x check, a approve, r reject, e edit (Ctrl+Enter saves, Esc cancels), u undo."),
    "page.of": ("第 {page} / {pages} 页，共 {total} 条", "page {page} of {pages}, {total} items"),
    "page.prev": ("上一页", "Previous"), "page.next": ("下一页", "Next"),
    "times_in": ("时间均为 {tz}", "times in {tz}"),
    "queue_empty": ("队列为空", "queue empty"),
    "nothing_here": ("这里没有内容。运行 huaxiang plan 生成建议。", "Nothing here. Run `huaxiang plan` to propose actions."),
    "nothing_selected": ("未选择任何条目（j/k 移动，x 勾选）。", "Nothing selected (j/k to move, x to check)."),
    "approve_needs_account": ("令牌登录只能查看、编辑和拒绝；批准需要审批账号：运行 huaxiang users add 名字 --role approver，然后用该账号登录。",
                              "Signed in with the token you can read, edit and reject; approving needs an approver "
                              "account: run `huaxiang users add NAME --role approver`, then sign in with it."),
    "need_name": ("请先在“审核人”中填写名字：批准会记录这个名字。", "Type your name in 'Reviewer' first: approvals are recorded with it."),
    "failed": ("{what} 失败：{error}", "{what} failed: {error}"),
    "saved": ("已保存 #{id}（批准后才会发送新文字）", "saved #{id} (approve it to send the new text)"),
    "did": ("#{id} → {status}", "#{id} → {status}"),
    "needs_second": ("已记录第一次批准，还需另一位审批人", "first approval recorded; a second approver must approve too"),
    "undo": ("撤销", "Undo"), "undone": ("已撤销 #{id}", "undone #{id}"),
    "could_not_load": ("无法加载：{error}", "could not load: {error}"),
    # -- refusals (bot.engage.queue_ops.QueueError codes)
    "err.missing": ("条目 #{id} 不存在", "item #{id} does not exist"),
    "err.state": ("#{id} 当前为“{status}”，不能这样操作", "#{id} is {status}; that is not possible now"),
    "err.no_name": ("请先填写审核人名字", "a person's name is needed"),
    "err.no_approver": ("批准需要审批账号，目前还没有：运行 huaxiang users add 名字 --role approver 创建，然后用它登录",
                        "approving needs an approver account and there is none yet: create one with "
                        "`huaxiang users add NAME --role approver`, then sign in with it"),
    "err.no_account": ("“{name}”不是有效的审核账号", "{name} is not an active review account"),
    "err.not_allowed": ("{name}（{role}）无权这样操作", "not allowed for {name} ({role})"),
    "err.follow_todo": ("#{id} 是关注建议：请标记“已手动关注”或“忽略”", "#{id} is a follow suggestion: mark it done by hand or dismiss it"),
    "err.no_text": ("#{id} 没有可批准的文字", "#{id} has no text to approve"),
    "err.second_same": ("#{id} 需要另一位审批人（不能是 {name}）", "#{id} needs a second approver other than {name}"),
    "err.undo_no": ("#{id} 的上一步无法撤销", "#{id}: the last change cannot be undone"),
    "err.undo_other": ("只有 {name} 能撤销 #{id} 的这一步", "only {name} can undo that change of #{id}"),
    "err.undo_late": ("已超过 {seconds} 秒，#{id} 无法撤销", "#{id}: undo is possible for {seconds} s only"),
    "err.too_long": ("#{id} 超过 {limit} 字", "#{id} is longer than {limit} characters"),
    "err.no_draft": ("#{id} 是关注建议，没有草稿", "#{id} is a follow suggestion: it has no draft"),
    "err.not_follow": ("#{id} 不是关注建议", "#{id} is not a follow suggestion"),
    # -- statuses and kinds
    "status.pending": ("待审核", "pending"), "status.approved": ("已批准", "approved"),
    "status.rejected": ("已拒绝", "rejected"), "status.expired": ("已过期", "expired"),
    "status.sending": ("发送中", "sending"), "status.sent": ("已发送", "sent"), "status.failed": ("失败", "failed"),
    "status.unknown": ("结果未知", "unknown"), "status.cancelled": ("已取消", "cancelled"),
    "status.done": ("已手动完成", "done by hand"), "status.dismissed": ("已忽略", "dismissed"),
    "kind.reply": ("回复", "reply"), "kind.repost": ("转发评论", "repost"), "kind.group_reply": ("群组回复", "group reply"),
    "kind.follow": ("关注建议", "follow"),
    "tier.leader": ("意见领袖", "opinion leader"), "tier.engaged": ("活跃潜客", "engaged prospect"),
    "tier.potential": ("潜在用户", "potential"),
    # -- card
    "btn.approve": ("批准", "Approve"), "btn.reject": ("拒绝", "Reject"), "btn.edit": ("编辑", "Edit"),
    "btn.save": ("保存", "Save"), "btn.done": ("已手动关注", "Done by hand"), "btn.dismiss": ("忽略", "Dismiss"),
    "select_item": ("选择条目 {id}", "select item {id}"), "draft_for": ("条目 {id} 的草稿", "draft for item {id}"),
    "score": ("得分 {score}", "score {score}"), "scheduled": ("计划 {when}", "scheduled {when}"),
    "followers": ("{n} 粉丝", "{n} followers"),
    "likes": ("赞 {n}", "likes {n}"), "comments": ("评论 {n}", "comments {n}"), "reposts": ("转发 {n}", "reposts {n}"),
    "open_post": ("打开原帖", "open post"), "profile": ("主页", "profile"),
    "follow_note": ("仅为建议：如果合适，请手动关注此人。机器人从不自动关注。",
                    "Suggestion only: follow this person by hand if they fit. The bot never follows anyone."),
    "approved_by": ("批准人：{name}", "approved by {name}"),
    "first_approval": ("第一位批准人：{name}，还需另一位批准", "first approval by {name}; needs a second approver"),
    "readonly": ("只读：此条目已结束（{status}）", "read-only: this item is finished ({status})"),
    "ctx.thread": ("讨论串", "Thread"), "ctx.top_comments": ("热门评论", "Top comments"),
    "ctx.recent_posts": ("此人最近的帖子", "Their recent posts"),
    "ctx.why": ("为什么是此人、此帖", "Why this person and this post"),
    "ctx.target": ("目标", "target"), "ctx.relevance": ("相关度", "relevance"), "ctx.tier": ("层级", "tier"),
    "ctx.phrases": ("匹配词", "matched phrases"), "ctx.audience": ("人群", "audience"),
    "ctx.draft_reason": ("草稿依据", "Draft reasoning"), "ctx.history": ("处理记录", "History"),
    "ctx.none": ("暂无", "none yet"), "ctx.show": ("背景", "Context"),
    "ctx.post_kind": ("帖子类型", "post kind"), "ctx.topics": ("话题", "topics"), "ctx.library": ("素材", "library"),
    "ctx.template": ("模板", "template"), "ctx.drafter": ("生成方式", "drafter"), "ctx.fallback": ("后备", "fallback"),
    "audit.plan": ("生成", "planned"), "audit.approve": ("批准", "approved"), "audit.approve_first": ("第一次批准", "first approval"),
    "audit.reject": ("拒绝", "rejected"), "audit.edit": ("编辑", "edited"), "audit.cancel": ("取消", "cancelled"),
    "audit.expire": ("过期", "expired"), "audit.send": ("发送", "sent"), "audit.undo": ("撤销", "undone"),
    "audit.done": ("手动完成", "done by hand"), "audit.dismiss": ("忽略", "dismissed"), "audit.resolve": ("确认", "resolved"), "audit.hold": ("暂停发送", "held"),
    # -- report
    "rep.title": ("画像 报告", "huaxiang report"),
    "rep.generated": ("生成于 {at}（{tz}），数据库 {db}", "generated {at} ({tz}) from {db}"),
    "rep.overview": ("概览", "Overview"),
    "rep.ov.users": ("用户", "users"), "rep.ov.posts": ("帖子", "posts"), "rep.ov.audiences": ("人群", "audiences"),
    "rep.ov.members": ("成员", "members"), "rep.ov.crawl_runs": ("抓取次数", "crawl runs"), "rep.ov.queue": ("队列条目", "queue items"),
    "rep.analysis": ("最近一次分析", "Last analysis"),
    "rep.map": ("人群地图", "Audience map"),
    "rep.map.intro": ("每个点是一位用户，按其发帖内容定位；颜色 = 人群，大小 = 影响力。",
                      "Each point is a user placed by what they write; colour = audience, size = influence."),
    "rep.map.empty": ("暂无数据：运行 huaxiang analyze 以在地图上放置用户", "no data yet: run `huaxiang analyze` to place users on the map"),
    "rep.audiences": ("人群", "Audiences"),
    "rep.audiences.intro": ("规模变化、特征关键词、话题、意见领袖、层级，以及成员发帖时间。",
                            "Size over time, distinctive keywords, topics, influencers, tiers and when members post."),
    "rep.audiences.empty": ("暂无数据：运行 huaxiang analyze 以发现人群", "no data yet: run `huaxiang analyze` to find audiences"),
    "rep.f.id": ("编号", "id"), "rep.f.auto_name": ("自动名称", "auto-name"), "rep.f.members": ("成员", "members"),
    "rep.f.share": ("占比", "share"), "rep.f.targets": ("服务的目标", "targets served"),
    "rep.f.prospects": ("潜客（意见领袖 / 活跃 / 潜在）", "prospects (leaders / engaged / potential)"),
    "rep.f.size": ("规模（每次分析）", "size (per analysis)"), "rep.f.missing": ("暂无数据", "no data yet"),
    "rep.c.size": ("{name}：规模变化", "{name}: size over time"),
    "rep.c.keywords": ("{name}：特征关键词", "{name}: distinctive keywords"),
    "rep.c.topics": ("{name}：热门话题", "{name}: top topics"),
    "rep.c.tiers": ("{name}：层级", "{name}: tiers"), "rep.c.activity": ("{name}：发帖时间（{tz}）", "{name}: when members post ({tz})"),
    "wd.mon": ("周一", "Mon"), "wd.tue": ("周二", "Tue"), "wd.wed": ("周三", "Wed"), "wd.thu": ("周四", "Thu"),
    "wd.fri": ("周五", "Fri"), "wd.sat": ("周六", "Sat"), "wd.sun": ("周日", "Sun"),
    "alt.map": ("{users} 位用户，{audiences} 个人群", "{users} users in {audiences} audiences"),
    "alt.size": ("{name} 在 {runs} 次分析中的规模", "size of {name} over {runs} analysis runs"),
    "alt.activity": ("按星期和小时统计的 {posts} 条帖子", "{posts} posts by weekday and hour"),
    "alt.rows": ("{title}：{rows} 行", "{title}: {rows} rows"),
    "alt.series": ("{title}：{periods} 个时段，{series} 条曲线", "{title}: {periods} periods, {series} series"),
    "rep.x.hour": ("小时（{tz}）", "hour ({tz})"),
    "rep.f.keywords": ("关键词（无权重）", "keywords (no weights)"),
    "rep.x.share": ("提及该词的成员帖子占比", "share of members' posts mentioning it"),
    "rep.x.weight": ("权重（c-TF-IDF）", "weight (c-TF-IDF)"), "rep.x.topic_weight": ("权重 / 帖子数", "weight / posts"),
    "rep.missing.size": ("规模变化", "size over time"), "rep.missing.keywords": ("关键词", "keywords"),
    "rep.missing.topics": ("话题", "topics"), "rep.missing.tiers": ("层级", "tiers"), "rep.missing.activity": ("发帖时间", "activity"),
    "rep.t.influencer": ("意见领袖", "influencer"), "rep.t.uid": ("用户编号", "user id"), "rep.t.followers": ("粉丝", "followers"),
    "rep.t.influence": ("影响力", "influence"), "rep.t.tier": ("层级", "tier"), "rep.t.verified": ("认证", "verified"),
    "rep.t.yes": ("是", "yes"),
    "rep.t.sample": ("示例帖子", "sample post"), "rep.t.by": ("作者", "by"), "rep.t.at": ("时间", "at"),
    "rep.t.target": ("目标", "target"), "rep.t.prospects": ("潜客", "prospects"),
    "rep.crawl": ("抓取", "Crawl"),
    "rep.crawl.intro": ("每个查询找到了什么、每天的数量，以及出了什么问题。", "What each query found, per day, and what went wrong."),
    "rep.crawl.per_query": ("各查询发现", "Found per query"),
    "rep.c.per_query": ("各查询发现的帖子和用户", "Posts and users found per query"),
    "rep.c.query_days": ("各查询每天发现的帖子", "Posts found per query per day"),
    "rep.s.posts": ("帖子", "posts"), "rep.s.users": ("用户", "users"),
    "rep.t.day": ("日期", "day"),
    "rep.t.query": ("查询", "query"), "rep.t.runs": ("运行次数", "runs"), "rep.t.requests": ("请求", "requests"),
    "rep.t.errors": ("错误", "errors"), "rep.t.blocked": ("被封锁", "blocked"), "rep.t.failed": ("失败", "failed"),
    "rep.t.last_run": ("最近运行", "last run"),
    "rep.crawl.empty": ("暂无数据：运行 huaxiang crawl（或导入帖子）", "no data yet: run `huaxiang crawl` (or import posts) to fill this"),
    "rep.crawl.per_day": ("每日发现", "Found per day"),
    "rep.c.per_day": ("每天新增的帖子和用户（{tz}）", "New posts and users per day ({tz})"),
    "rep.crawl.nothing": ("暂无数据：尚未存储任何内容", "no data yet: nothing stored"),
    "rep.crawl.faults": ("错误与封锁", "Errors and blocks"), "rep.c.faults": ("各查询的故障", "Faults per query"),
    "rep.s.errors": ("错误", "errors"), "rep.s.blocked_runs": ("被封锁的运行", "blocked runs"),
    "rep.t.run": ("运行", "run"), "rep.t.started": ("开始", "started"), "rep.t.status": ("状态", "status"),
    "rep.t.faults": ("故障", "faults"), "rep.t.error": ("错误信息", "error"),
    "rep.t.source": ("来源", "source"), "rep.t.platform": ("平台", "platform"), "rep.t.paused": ("暂停至", "paused until"),
    "rep.t.reason": ("原因", "reason"), "rep.t.blocks_row": ("连续封锁", "blocks in a row"),
    "rep.t.last_blocked": ("最近封锁", "last blocked"), "rep.t.last_ok": ("最近正常", "last ok"),
    "rep.crawl.no_faults": ("没有记录到错误或封锁", "no errors or blocks recorded"),
    "rep.crawl.no_runs": ("暂无数据：没有抓取记录", "no data yet: no crawl runs"),
    "rep.campaign": ("互动", "Campaign"),
    "rep.campaign.intro": ("各状态的建议数量，以及各人群、各模板变体的反响。",
                           "Proposed actions by state and how people responded, per audience and template variant."),
    "rep.campaign.states": ("各状态的建议", "Actions by state"), "rep.x.actions": ("条数", "actions"),
    "rep.c.per_day_actions": ("每天的建议（{tz}）", "Actions per day ({tz})"),
    "rep.s.proposed": ("生成", "proposed"), "rep.s.approved": ("批准", "approved"), "rep.s.sent": ("发送", "sent"),
    "rep.campaign.empty": ("暂无数据：运行 huaxiang plan 生成建议", "no data yet: run `huaxiang plan` to propose actions"),
    "rep.campaign.rates": ("各人群、各模板变体的反响率", "Response rate per audience and template variant"),
    "rep.c.rate": ("每周反响率", "Response rate per week"), "rep.y.rate": ("回应 / 发送", "responded / sent"),
    "rep.t.audience": ("人群", "audience"), "rep.t.template": ("模板", "template"), "rep.t.variant": ("变体", "variant"),
    "rep.t.kind": ("类型", "kind"), "rep.t.sent": ("发送", "sent"), "rep.t.responded": ("有回应", "responded"),
    "rep.t.replies": ("回复", "replies"), "rep.t.likes": ("点赞", "likes"), "rep.t.follow_backs": ("回关", "follow-backs"),
    "rep.t.optouts": ("退出", "opt-outs"), "rep.t.rate": ("反响率", "rate"),
    "rep.prospects": ("潜在客户", "Prospects"),
    "rep.prospects.intro": ("与每个目标相关的用户（相关度 0.5 以上）、他们所在的人群，以及不属于任何人群的用户。",
                            "Users relevant to each target (0.5 and up) and the audiences they make up; users who fit no audience."),
    "rep.pro.target": ("目标：{target}", "target {target}"),
    "rep.pro.prospects": ("潜在客户（相关度 ≥ 0.5）", "prospects (relevance 0.5+)"),
    "rep.pro.unassigned_prospects": ("其中不属于任何人群", "of them in no audience"),
    "rep.pro.audience": ("人群", "audience"), "rep.pro.members": ("成员", "members"),
    "rep.pro.mean_relevance": ("平均相关度", "mean relevance"),
    "rep.pro.spread": ("无：潜在客户分散在多个人群中", "none: its prospects are spread over several audiences"),
    "rep.pro.unassigned": ("不属于任何人群的用户", "Users who fit no audience"),
    "rep.pro.unassigned_users": ("未归入人群", "unassigned"),
    "rep.pro.of_analysed": ("占已分析用户", "of analysed users"),
    "rep.pro.engaged": ("作为成员互动", "engaged as members"), "rep.pro.never": ("从不", "never"),
    "rep.pro.user": ("用户", "user"), "rep.pro.uid": ("用户 ID", "user id"), "rep.pro.posts": ("帖子", "posts"),
    "rep.pro.best_relevance": ("最高相关度", "best relevance"), "rep.pro.keywords": ("本人关键词", "own keywords"),
    "rep.rates.empty": ("暂无数据：尚未发送，或尚未检查回应", "no data yet: nothing sent, or no responses checked yet"),
    "rep.broken": ("这一部分无法绘制（{error}）", "this part could not be drawn ({error})"),
    "rep.y.posts": ("帖子", "posts"),
    # -- export headers (XLSX): col.<column key>
    "col.platform": ("平台", "platform"),
    "col.rank": ("排名", "rank"),
    "col.why": ("相关原因", "why"),
    "col.membership_score": ("人群契合度", "membership_score"),
    "col.relevance_target": ("最相关目标", "relevance_target"),
    "col.target": ("服务目标", "target"),
    "col.target_relevance": ("目标相关度", "target_relevance"),
    "col.draft_why": ("草稿依据", "draft_why"),
    "col.draft_reason": ("草稿依据（JSON）", "draft_reason"),
    "col.account_type": ("账号类型", "account_type"),
    "col.followers_at_least": ("粉丝数为下限", "followers_at_least"),
    "col.ip_location": ("IP属地", "ip_location"),
    "col.birthday": ("生日", "birthday"),
    "col.education": ("教育", "education"),
    "col.company": ("公司", "company"),
    "col.registered_at": ("注册时间", "registered_at"),
    "col.is_bot": ("机器人账号", "is_bot"),
    "col.user_id": ("用户编号", "user_id"),
    "col.name": ("昵称", "name"),
    "col.tier": ("层级", "tier"),
    "col.relevance": ("相关度", "relevance"),
    "col.influence": ("影响力", "influence"),
    "col.top_keywords": ("关键词", "top_keywords"),
    "col.profile_url": ("主页链接", "profile_url"),
    "col.followers": ("粉丝数", "followers"),
    "col.following": ("关注数", "following"),
    "col.posts_count": ("发帖数", "posts_count"),
    "col.verified": ("认证", "verified"),
    "col.verified_reason": ("认证说明", "verified_reason"),
    "col.gender": ("性别", "gender"),
    "col.location": ("地区", "location"),
    "col.tags": ("标签", "tags"),
    "col.bio": ("简介", "bio"),
    "col.first_seen": ("首次发现", "first_seen"),
    "col.last_seen": ("最近出现", "last_seen"),
    "col.audience_id": ("人群编号", "audience_id"),
    "col.score": ("得分", "score"),
    "col.id": ("编号", "id"),
    "col.status": ("状态", "status"),
    "col.kind": ("类型", "kind"),
    "col.source": ("来源", "source"),
    "col.audience": ("人群", "audience"),
    "col.target_uid": ("目标用户编号", "target_uid"),
    "col.target_name": ("目标昵称", "target_name"),
    "col.target_url": ("目标主页", "target_url"),
    "col.post_pid": ("帖子编号", "post_pid"),
    "col.post_url": ("原帖链接", "post_url"),
    "col.post_text": ("原帖内容", "post_text"),
    "col.template": ("模板", "template"),
    "col.variant": ("变体", "variant"),
    "col.draft": ("草稿", "draft"),
    "col.reason": ("原因", "reason"),
    "col.scheduled_at": ("计划时间", "scheduled_at"),
    "col.expires_at": ("过期时间", "expires_at"),
    "col.created_at": ("创建时间", "created_at"),
    "col.updated_at": ("更新时间", "updated_at"),
    "col.explanation": ("说明", "explanation"),
    "col.approved_by": ("批准人", "approved_by"),
    "col.approved_at": ("批准时间", "approved_at"),
    "col.sent_at": ("发送时间", "sent_at"),
    "col.send_mode": ("发送方式", "send_mode"),
    "col.remote_id": ("平台编号", "remote_id"),
    "col.attempts": ("尝试次数", "attempts"),
    "col.last_error": ("最近错误", "last_error"),
    "col.at": ("时间", "at"),
    "col.actor": ("操作人", "actor"),
    "col.action": ("操作", "action"),
    "col.item_id": ("条目编号", "item_id"),
    "col.from_status": ("原状态", "from_status"),
    "col.to_status": ("新状态", "to_status"),
    "col.text_before": ("修改前", "text_before"),
    "col.text_after": ("修改后", "text_after"),
    "col.detail": ("详情", "detail"),
    # -- explanations rendered from stored facts (bot.engage.explain)
    "x.head": ("得分 {score}：{who}，粉丝 {followers}；{age}发帖，加权互动 {interactions}；{learned}。",
               "Score {score}: {who}, {followers} followers; posted {age} ago with {interactions} weighted interactions; {learned}."),
    "x.who": ("{audience}的{tier}（相关度 {relevance}{why}）", "{tier} of {audience} (relevance {relevance}{why})"),
    "x.who_why": ("：{why}", ": {why}"),
    "x.who_group": ("小组 {audience} 中的活跃讨论", "active thread in group {audience}"),
    "x.member": ("成员", "member"),
    "x.age_h": ("{n} 小时前", "{n} h"), "x.age_d": ("{n} 天前", "{n} days"),
    "x.learned": ("该人群已回应 {responded}/{sent}", "this audience answered {responded}/{sent} so far"),
    "x.learned_none": ("尚无回应数据", "no responses learned yet"),
    "x.target": ("服务目标人群「{target}」（相关度 {relevance}）。", " Serves target {target} (relevance {relevance})."),
    "x.draft": ("草稿：模板「{template}」第 {variant} 版{why}。", " Draft: template '{template}' variant {variant}{why}."),
    "x.draft_why": ("（{why}）", " ({why})"),
    "x.scheduled": ("计划于 {when}{active}。", " Scheduled {when}{active}."),
    "x.active": ("，在其常活跃时段", " in their usual active hours"),
    "x.follow_never": ("关注不会由机器人发出。", " Follows are never sent by the bot."),
    "x.reason": ("{audience}的{tier}", "{tier} in {audience}"),
    "x.reason_group": ("小组 {audience} 中的活跃讨论", "active thread in group {audience}"),
    "x.reason_follow": ("{audience}的意见领袖：合适的话请手动关注", "opinion leader in {audience}: follow by hand if they fit"),
    "x.sep": ("；", "; "), "x.list": ("、", ", "),
    "pk.question": ("提问（求推荐/提问）", "question (求推荐/提问)"), "pk.complaint": ("吐槽", "complaint (吐槽)"),
    "pk.progress": ("打卡/进步", "progress (打卡/进步)"), "pk.review": ("探店/测评", "review (探店/测评)"),
    "pk.share": ("分享", "sharing (分享)"), "pk.statement": ("陈述", "statement"),
    "dr.post": ("{kind}帖", "{kind} post"), "dr.quotes": ("引用 {x}", "quotes {x}"), "dr.topics": ("话题 {x}", "topics {x}"),
    "dr.library": ("素材 {id}{by}", "library {id}{by}"), "dr.library_by": ("（按{by}匹配）", " (by {by})"),
    "dr.by.words": ("词语", "words"), "dr.by.vector": ("语义", "vector"),
    "dr.asks": ("追问 {x}", "asks {x}"), "dr.fallback": ("大模型未用上，改用后备：{x}", "LLM fell back: {x}"),
    "dr.drafter.builtin": ("内置句式", "builtin"), "dr.drafter.template": ("模板", "template"),
    "dr.drafter.llm": ("大模型", "llm"), "dr.drafter.library": ("素材库", "library"),
    "rv.meaning": ("语义相关度 {score}（第 {rank}/{n} 名）", "meaning {score} (rank {rank}/{n})"),
    "rv.meaning_only": ("语义相关度 {score}", "meaning {score}"),
    "rv.posts": ("相关帖子：{x}", "posts: {x}"), "rv.terms": ("相关词：{x}", "terms: {x}"), "rv.seed": ("（种子词）", " (seed)"),
    "ctx.draft_why": ("草稿为何这样写", "Why the draft reads this way"),
}


def language(settings: Settings | None) -> str:
    lang = getattr(getattr(settings, "ui", None), "language", "zh") if settings is not None else "zh"
    return lang if lang in LANGUAGES else "zh"


def t(key: str, lang: str = "zh", **values: object) -> str:
    """The message for ``key`` in ``lang``; an unknown key is shown as itself (and logged)."""
    pair = MESSAGES.get(key)
    if pair is None:
        log.warning("no message %r in the catalogue", key)
        return key
    text = pair[0] if lang == "zh" else pair[1]
    return text.format(**values) if values else text


def catalogue(lang: str) -> dict[str, str]:
    """Every message in one language (what the review page downloads)."""
    i = 0 if lang == "zh" else 1
    return {k: v[i] for k, v in MESSAGES.items()}


def zone(name: str):
    """The campaign's time zone; UTC (with a warning) when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; showing UTC", name)
        return timezone.utc


def to_local(value: str | datetime | None, tz) -> datetime | None:
    when = parse_stored(value)
    return None if when is None else when.astimezone(tz)


def fmt_time(value: str | datetime | None, tz) -> str:
    """One format for every time a person reads: campaign-local ``YYYY-MM-DD HH:MM``."""
    local = to_local(value, tz)
    return local.strftime(TIME_FORMAT) if local else ""
