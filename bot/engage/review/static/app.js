// huaxiang review page. Every piece of data is put into the page with
// textContent or input .value, never innerHTML: post text comes from strangers.
// Strangers' text is also isolated for bidi (<bdi>, dir=auto) so a U+202E in a
// name cannot flip the rest of the line. Every label comes from the server's
// message catalogue (/api/session), so the page speaks the campaign's language.
"use strict";

const PAGE_SIZE = 20;
const state = { csrf: "", items: [], cursor: -1, editing: null, maxLength: 140, msg: {}, user: {}, accounts: false,
                offset: 0, total: 0, undoIds: [], undoTimer: null, undoSeconds: 10 };

function $(id) { return document.getElementById(id); }

function T(key, values) {
  let text = state.msg[key] || key;
  for (const [k, v] of Object.entries(values || {})) text = text.split("{" + k + "}").join(String(v));
  return text;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// Text written by strangers: its own direction, isolated from what surrounds it.
function foreign(tag, cls, text) {
  const node = el(tag, cls, text);
  node.dir = "auto";
  return node;
}

function say(text, bad) {
  $("message-text").textContent = text;
  $("message").className = bad ? "bad" : "ok";
}

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  if (opts.method && opts.method !== "GET") {
    opts.headers["Content-Type"] = "application/json";
    opts.headers["X-CSRF-Token"] = state.csrf;
  }
  const res = await fetch(path, opts);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const code = res.headers.get("X-Error-Code");
    if (code && state.msg["err." + code]) {
      let values = {};
      try { values = JSON.parse(res.headers.get("X-Error-Values") || "{}"); } catch (e) { values = {}; }
      throw new Error(refusal(code, values));
    }
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : res.statusText;
    throw new Error(detail);
  }
  return { body: body, total: Number(res.headers.get("X-Total-Count") || 0) };
}

// A refusal from the queue, in the page's language (statuses and roles too).
function refusal(code, values) {
  const v = Object.assign({}, values || {});
  if (v.status) v.status = T("status." + v.status);
  if (v.role) v.role = T("role." + v.role);
  return T("err." + code, v);
}

function reviewer() {
  if (state.accounts) return "";
  const name = $("reviewer").value.trim();
  if (!name) { say(T("need_name"), true); $("reviewer").focus(); return null; }
  localStorage.setItem("huaxiang.reviewer", name);
  return name;
}

function fillSelect(select, values, labelPrefix) {
  for (const v of values) {
    const o = el("option", null, labelPrefix ? T(labelPrefix + v) : v);
    o.value = v;
    select.appendChild(o);
  }
}

async function init() {
  const s = (await api("/api/session")).body;
  Object.assign(state, { csrf: s.csrf, maxLength: s.max_length, msg: s.messages, user: s.user, accounts: s.accounts,
                         undoSeconds: s.undo_seconds });
  if (s.accounts) {
    $("who").textContent = T("signed_in_as", { name: s.user.name || "-", role: T("role." + s.user.role) });
    $("logout").hidden = false;
    $("logout").addEventListener("click", async () => { await api("/api/logout", { method: "POST", body: "{}" }); location.href = "/"; });
  } else {
    $("reviewer-box").hidden = false;
    $("reviewer").value = localStorage.getItem("huaxiang.reviewer") || "";
    if (!s.user.rights.includes("approve")) $("approve-note").hidden = false;
  }
  if (!s.user.rights.includes("approve")) $("approve-selected").hidden = true;
  if (!s.user.rights.includes("reject")) $("reject-selected").hidden = true;
  fillSelect($("f-status"), s.statuses.filter((x) => x !== "pending"), "status.");
  fillSelect($("f-audience"), s.audiences);
  fillSelect($("f-kind"), s.kinds, "kind.");
  for (const id of ["f-status", "f-audience", "f-kind", "f-sort", "f-from", "f-to"]) $(id).addEventListener("change", () => { state.offset = 0; load(); });
  let typing = null;
  $("f-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { state.offset = 0; load(); }, 250); });
  $("approve-selected").addEventListener("click", () => act("approve", checkedIds()));
  $("reject-selected").addEventListener("click", () => act("reject", checkedIds()));
  $("undo").addEventListener("click", undo);
  $("check-all").addEventListener("change", () => { for (const b of document.querySelectorAll("article.item .check")) b.checked = $("check-all").checked; });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); });
  $("next").addEventListener("click", () => { if (state.offset + PAGE_SIZE < state.total) { state.offset += PAGE_SIZE; load(); } });
  document.addEventListener("keydown", onKey);
  await load();
}

async function load() {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.offset), sort: $("f-sort").value });
  for (const [k, id] of [["status", "f-status"], ["audience", "f-audience"], ["kind", "f-kind"], ["q", "f-q"],
                         ["date_from", "f-from"], ["date_to", "f-to"]]) {
    if ($(id).value) q.set(k, $(id).value);
  }
  const res = await api("/api/items?" + q.toString());
  state.items = res.body;
  state.total = res.total;
  if (state.offset && state.offset >= state.total) { state.offset = Math.max(0, state.total - PAGE_SIZE); return load(); }
  const counts = (await api("/api/counts")).body;
  $("counts").textContent = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => T("status." + k) + " " + n).join(" · ") || T("queue_empty");
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  $("page-info").textContent = T("page.of", { page: Math.floor(state.offset / PAGE_SIZE) + 1, pages: pages, total: state.total });
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + PAGE_SIZE >= state.total;
  render();
}

function render() {
  $("check-all").checked = false;
  const main = $("queue");
  main.replaceChildren();
  state.items.forEach((it, i) => main.appendChild(card(it, i)));
  if (!state.items.length) main.appendChild(el("p", "empty", T("nothing_here")));
  if (state.cursor >= state.items.length) state.cursor = state.items.length - 1;
  highlight();
}

function head(it) {
  const h = el("div", "head");
  const box = el("input");
  box.type = "checkbox";
  box.className = "check";
  box.setAttribute("aria-label", T("select_item", { id: it.id }));
  h.append(box, el("span", "id", "#" + it.id), el("span", "kind", T("kind." + it.kind)),
           el("span", "status", T("status." + it.status)));
  if (it.tier) h.appendChild(el("span", "tier", T("tier." + it.tier)));
  const aud = foreign("bdi", "audience", it.audience || "");
  h.appendChild(aud);
  if (it.score !== null && it.score !== undefined) h.appendChild(el("span", "score", T("score", { score: Number(it.score).toFixed(2) })));
  if (it.display.scheduled_at) h.appendChild(el("span", "when", T("scheduled", { when: it.display.scheduled_at })));
  return h;
}

function person(it) {
  const who = el("div", "who");
  who.appendChild(foreign("bdi", "user-name", it.user_name || it.target_uid || ""));
  who.appendChild(el("span", "followers", T("followers", { n: it.user_followers || 0 })));
  if (it.user_location) who.appendChild(foreign("bdi", "loc", it.user_location));
  if (it.user_bio) who.appendChild(foreign("div", "bio", it.user_bio));
  return who;
}

function post(it) {
  const p = el("blockquote", "post");
  p.appendChild(foreign("div", "post-text", it.post_text || ""));
  const meta = [it.display.post_created_at, T("likes", { n: it.post_likes || 0 }), T("comments", { n: it.post_comments || 0 }),
                T("reposts", { n: it.post_reposts || 0 })].filter(Boolean).join(" · ");
  p.appendChild(el("div", "post-meta", meta));
  const links = el("div", "links");
  for (const [label, url] of [[T("open_post"), it.post_link], [T("profile"), it.profile_link]]) {
    if (url && /^https?:\/\//.test(url)) {
      const a = el("a", null, label);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      links.appendChild(a);
    }
  }
  p.appendChild(links);
  return p;
}

function whyBox(it) {
  const w = it.context.why;
  const box = el("div", "why");
  const parts = [];
  if (w.target) parts.push([T("ctx.target"), w.target]);
  if (w.relevance !== null && w.relevance !== undefined) parts.push([T("ctx.relevance"), Number(w.relevance).toFixed(2)]);
  if (w.tier) parts.push([T("ctx.tier"), T("tier." + w.tier)]);
  if (w.phrases && w.phrases.length) parts.push([T("ctx.phrases"), w.phrases.join("、")]);
  for (const [k, v] of parts) {
    const s = el("span", "fact");
    s.append(el("b", null, k + " "), foreign("bdi", null, v));
    box.appendChild(s);
  }
  if (w.explanation) box.appendChild(foreign("div", "explanation", w.explanation));
  return box;
}

function list(title, rows, line) {
  const sec = el("div", "ctx-part");
  sec.appendChild(el("h4", null, title));
  if (!rows.length) { sec.appendChild(el("p", "none", T("ctx.none"))); return sec; }
  const ul = el("ul");
  for (const r of rows) ul.appendChild(line(r));
  sec.appendChild(ul);
  return sec;
}

function contextBox(it) {
  const c = it.context;
  const d = el("details", "context");
  d.appendChild(el("summary", null, T("ctx.show") + " · " + T("ctx.thread") + " " + c.comments.length + " · " + T("ctx.history") + " " + c.history.length));
  d.appendChild(list(T("ctx.top_comments"), c.comments, (r) => {
    const li = el("li");
    li.append(foreign("bdi", "c-name", r.user_name || r.uid || ""), el("span", "sep", "："), foreign("bdi", "c-text", r.text || ""),
              el("span", "c-meta", " · " + T("likes", { n: r.likes || 0 })));
    return li;
  }));
  d.appendChild(list(T("ctx.recent_posts"), c.recent_posts, (r) => {
    const li = el("li");
    li.append(el("span", "c-meta", (r.at || "") + " "), foreign("bdi", "c-text", r.text || ""));
    return li;
  }));
  const reason = c.draft_reason || {};
  const rows = [];
  if (c.draft_why) rows.push([T("ctx.draft_why"), c.draft_why]);
  for (const key of ["post_kind", "phrases", "topics", "template", "drafter", "fallback"]) {
    if (reason[key] === undefined || reason[key] === null || reason[key] === "") continue;
    let v = Array.isArray(reason[key]) ? reason[key].join("、") : String(reason[key]);
    if (key === "post_kind" && state.msg["pk." + v]) v = T("pk." + v);
    if (key === "drafter" && state.msg["dr.drafter." + v]) v = T("dr.drafter." + v);
    rows.push([T("ctx." + key), v]);
  }
  if (reason.library && reason.library.text) rows.push([T("ctx.library"), reason.library.text]);
  d.appendChild(list(T("ctx.draft_reason"), rows, ([k, v]) => { const li = el("li"); li.append(el("b", null, k + " "), foreign("bdi", null, v)); return li; }));
  d.appendChild(list(T("ctx.history"), c.history, (h) => {
    const li = el("li", "audit");
    li.append(el("span", "c-meta", h.at + " "), foreign("bdi", "actor", h.actor), el("span", null, " " + T("audit." + h.action) +
              (h.from && h.to ? " (" + T("status." + h.from) + " → " + T("status." + h.to) + ")" : "")));
    if (h.reason) li.appendChild(foreign("bdi", "c-text", " " + h.reason));
    return li;
  }));
  return d;
}

function card(it, i) {
  const c = el("article", "item status-" + it.status + (it.readonly ? " readonly" : ""));
  c.dataset.id = String(it.id);
  c.dataset.index = String(i);
  c.tabIndex = -1;
  c.append(head(it), person(it), post(it), whyBox(it), contextBox(it));
  if (it.kind === "follow") {
    c.appendChild(el("div", "note", T("follow_note")));
  } else {
    const draft = el("textarea", "draft");
    draft.value = it.text || "";
    draft.dir = "auto";
    draft.readOnly = true;
    draft.rows = 2;
    draft.style.minHeight = "2.6em";
    draft.maxLength = state.maxLength;
    draft.setAttribute("aria-label", T("draft_for", { id: it.id }));
    const len = el("span", "len", (it.text || "").length + "/" + state.maxLength);
    draft.addEventListener("input", () => { len.textContent = draft.value.length + "/" + state.maxLength; });
    c.append(draft, len);
  }
  if (it.approved_by) c.appendChild(foreign("div", "approved", T("approved_by", { name: it.approved_by })));
  if (it.first_approved_by) c.appendChild(foreign("div", "approved", T("first_approval", { name: it.first_approved_by })));
  if (it.last_error) c.appendChild(foreign("div", "note", it.last_error));
  if (it.readonly) c.appendChild(el("div", "readonly-note", T("readonly", { status: T("status." + it.status) })));
  const buttons = el("div", "buttons");
  const handlers = { approve: () => act("approve", [it.id]), reject: () => act("reject", [it.id]), edit: () => startEdit(i),
                     done: () => act("done", [it.id]), dismiss: () => act("dismiss", [it.id]) };
  for (const a of it.actions) {
    const b = el("button", "btn-" + a, T("btn." + a));
    b.type = "button";
    b.addEventListener("click", handlers[a]);
    buttons.appendChild(b);
    if (a === "edit") {
      const save = el("button", "btn-save", T("btn.save"));
      save.type = "button";
      save.hidden = true;
      save.addEventListener("click", () => saveEdit(i));
      buttons.appendChild(save);
    }
  }
  if (it.actions.length) c.appendChild(buttons);
  c.addEventListener("click", (ev) => { if (ev.target.tagName !== "BUTTON" && ev.target.tagName !== "SUMMARY") { state.cursor = i; highlight(); } });
  return c;
}

function cards() { return Array.from(document.querySelectorAll("article.item")); }

function highlight() {
  cards().forEach((c, i) => c.classList.toggle("current", i === state.cursor));
  const cur = cards()[state.cursor];
  if (cur && !state.editing) cur.scrollIntoView({ block: "nearest" });
}

function checkedIds() {
  return cards().filter((c) => c.querySelector(".check").checked).map((c) => Number(c.dataset.id));
}

function offerUndo(ids) {
  clearTimeout(state.undoTimer);
  state.undoIds = ids;
  $("undo").hidden = !ids.length;
  state.undoTimer = setTimeout(() => { $("undo").hidden = true; state.undoIds = []; }, state.undoSeconds * 1000);
}

async function act(what, ids) {
  if (!ids.length) { say(T("nothing_selected"), true); return; }
  const by = reviewer();
  if (by === null) return;
  try {
    const res = (await api("/api/items/" + what, { method: "POST", body: JSON.stringify({ ids: ids, by: by, reason: $("reason").value }) })).body;
    const bad = res.filter((r) => !r.ok);
    say(res.map((r) => r.ok ? T("did", { id: r.item_id, status: T("status." + r.status) }) +
                    (what === "approve" && r.status === "pending" ? " · " + T("needs_second") : "")
                    : (r.code && state.msg["err." + r.code] ? refusal(r.code, r.values) : r.message)).join("; "),
        bad.length > 0);
    offerUndo(res.filter((r) => r.ok).map((r) => r.item_id));
  } catch (e) { say(T("failed", { what: T("btn." + what), error: e.message }), true); }
  await load();
}

async function undo() {
  const ids = state.undoIds;
  offerUndo([]);
  const by = reviewer();
  if (by === null) return;
  const done = [];
  try {
    for (const id of ids) { await api("/api/items/" + id + "/undo", { method: "POST", body: JSON.stringify({ by: by }) }); done.push(id); }
    say(done.map((id) => T("undone", { id: id })).join("; "));
  } catch (e) { say(T("failed", { what: T("undo"), error: e.message }), true); }
  await load();
}

function startEdit(i) {
  state.cursor = i;
  highlight();
  const c = cards()[i];
  const t = c && c.querySelector("textarea.draft");
  if (!t || !c.querySelector(".btn-edit")) return;
  t.readOnly = false;
  c.classList.add("editing");
  c.querySelector(".btn-save").hidden = false;
  state.editing = Number(c.dataset.id);
  t.focus();
  t.setSelectionRange(t.value.length, t.value.length);
}

async function saveEdit(i) {
  const c = cards()[i];
  if (!c) return;
  const by = reviewer();
  if (by === null) return;
  const text = c.querySelector("textarea.draft").value;
  try {
    await api("/api/items/" + c.dataset.id + "/edit", { method: "POST", body: JSON.stringify({ text: text, by: by }) });
    say(T("saved", { id: c.dataset.id }));
  } catch (e) { say(T("failed", { what: T("btn.edit"), error: e.message }), true); }
  state.editing = null;
  await load();
}

function onKey(ev) {
  const tag = (ev.target.tagName || "").toLowerCase();
  if (state.editing !== null) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); saveEdit(state.cursor); }
    else if (ev.key === "Escape") { ev.preventDefault(); state.editing = null; render(); }
    return;
  }
  if (tag === "input" || tag === "select" || tag === "textarea" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const n = state.items.length;
  const cur = cards()[state.cursor];
  const can = (a) => cur && state.items[state.cursor] && state.items[state.cursor].actions.includes(a);
  if (ev.key === "j") { state.cursor = Math.min(n - 1, state.cursor + 1); highlight(); }
  else if (ev.key === "k") { state.cursor = Math.max(0, state.cursor - 1); highlight(); }
  else if (ev.key === "x") { if (cur) { const b = cur.querySelector(".check"); b.checked = !b.checked; } }
  else if (ev.key === "a" || ev.key === "r") {
    const what = ev.key === "a" ? "approve" : "reject";
    const ids = checkedIds();
    if (what === "approve" && !state.accounts && !state.user.rights.includes("approve")) say(T("approve_needs_account"), true);
    else act(what, ids.length ? ids : (can(what) ? [Number(cur.dataset.id)] : []));
  } else if (ev.key === "e") { if (can("edit")) { ev.preventDefault(); startEdit(state.cursor); } }
  else if (ev.key === "u") { if (state.undoIds.length) undo(); }
  else return;
  ev.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => { init().catch((e) => say(T("could_not_load", { error: e.message }), true)); });
