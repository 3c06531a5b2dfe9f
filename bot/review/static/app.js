// huaxiang review page. Every piece of data is put into the page with
// textContent or input .value, never innerHTML: post text comes from strangers.
"use strict";

const state = { csrf: "", items: [], cursor: -1, editing: null, maxLength: 140 };

function $(id) { return document.getElementById(id); }

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function say(text, bad) {
  const m = $("message");
  m.textContent = text;
  m.className = bad ? "bad" : "ok";
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
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : res.statusText;
    throw new Error(detail);
  }
  return body;
}

function reviewer() {
  const name = $("reviewer").value.trim();
  if (!name) { say("Type your name in 'Reviewer' first: approvals are recorded with it.", true); $("reviewer").focus(); }
  else localStorage.setItem("huaxiang.reviewer", name);
  return name;
}

function fillSelect(select, values) {
  for (const v of values) {
    const o = el("option", null, v);
    o.value = v;
    select.appendChild(o);
  }
}

async function init() {
  $("reviewer").value = localStorage.getItem("huaxiang.reviewer") || "";
  const s = await api("/api/session");
  state.csrf = s.csrf;
  state.maxLength = s.max_length;
  fillSelect($("f-status"), s.statuses.filter((x) => x !== "pending"));
  fillSelect($("f-audience"), s.audiences);
  fillSelect($("f-kind"), s.kinds);
  for (const id of ["f-status", "f-audience", "f-kind"]) $(id).addEventListener("change", load);
  $("approve-selected").addEventListener("click", () => act("approve", checkedIds()));
  $("reject-selected").addEventListener("click", () => act("reject", checkedIds()));
  document.addEventListener("keydown", onKey);
  await load();
}

async function load() {
  const q = new URLSearchParams();
  for (const [k, id] of [["status", "f-status"], ["audience", "f-audience"], ["kind", "f-kind"]]) {
    if ($(id).value) q.set(k, $(id).value);
  }
  state.items = await api("/api/items?" + q.toString());
  const counts = await api("/api/counts");
  $("counts").textContent = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => k + " " + n).join(" · ") || "queue empty";
  render();
}

function render() {
  const main = $("queue");
  main.replaceChildren();
  let group = null, section = null;
  state.items.forEach((it, i) => {
    if (it.audience !== group) {
      group = it.audience;
      section = el("section", "group");
      section.appendChild(el("h2", null, group));
      main.appendChild(section);
    }
    section.appendChild(card(it, i));
  });
  if (!state.items.length) main.appendChild(el("p", "empty", "Nothing here. Run `huaxiang plan` to propose actions."));
  if (state.cursor >= state.items.length) state.cursor = state.items.length - 1;
  highlight();
}

function card(it, i) {
  const c = el("article", "item status-" + it.status);
  c.dataset.id = String(it.id);
  c.dataset.index = String(i);
  c.tabIndex = -1;
  const head = el("div", "head");
  const box = el("input");
  box.type = "checkbox";
  box.className = "check";
  box.setAttribute("aria-label", "select item " + it.id);
  head.appendChild(box);
  head.appendChild(el("span", "id", "#" + it.id));
  head.appendChild(el("span", "kind", it.kind));
  head.appendChild(el("span", "status", it.status));
  head.appendChild(el("span", "tier", it.tier || ""));
  head.appendChild(el("span", "score", it.score === null ? "" : "score " + Number(it.score).toFixed(2)));
  head.appendChild(el("span", "when", it.scheduled_at ? "at " + it.scheduled_at.slice(0, 16).replace("T", " ") + " UTC" : ""));
  c.appendChild(head);

  const who = el("div", "who");
  who.appendChild(el("strong", "user-name", it.user_name || it.target_uid || ""));
  who.appendChild(el("span", "followers", (it.user_followers || 0) + " followers"));
  if (it.user_location) who.appendChild(el("span", "loc", it.user_location));
  if (it.user_bio) who.appendChild(el("div", "bio", it.user_bio));
  c.appendChild(who);

  const post = el("blockquote", "post");
  post.appendChild(el("div", "post-text", it.post_text || ""));
  post.appendChild(el("div", "post-meta",
    (it.post_created_at || "").slice(0, 16).replace("T", " ") + " · ♥ " + (it.post_likes || 0) + " · 💬 " + (it.post_comments || 0) + " · ↻ " + (it.post_reposts || 0)));
  const links = el("div", "links");
  for (const [label, url] of [["open post", it.post_link], ["profile", it.profile_link]]) {
    if (url && /^https?:\/\//.test(url)) {
      const a = el("a", null, label);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      links.appendChild(a);
    }
  }
  post.appendChild(links);
  c.appendChild(post);

  c.appendChild(el("div", "why", it.explanation || it.reason || ""));

  if (it.kind === "follow") {
    c.appendChild(el("div", "note", "Suggestion only: follow this person by hand if they fit. The bot never follows anyone."));
  }
  const draft = el("textarea", "draft");
  draft.value = it.text || "";
  draft.readOnly = true;
  draft.rows = 2;
  draft.maxLength = state.maxLength;
  draft.setAttribute("aria-label", "draft for item " + it.id);
  c.appendChild(draft);
  const len = el("span", "len", (it.text || "").length + "/" + state.maxLength);
  draft.addEventListener("input", () => { len.textContent = draft.value.length + "/" + state.maxLength; });
  c.appendChild(len);

  if (it.approved_by) c.appendChild(el("div", "approved", "approved by " + it.approved_by));
  if (it.last_error) c.appendChild(el("div", "note", it.last_error));

  const buttons = el("div", "buttons");
  for (const [label, fn] of [["Approve", () => act("approve", [it.id])], ["Reject", () => act("reject", [it.id])],
                             ["Edit", () => startEdit(i)], ["Save", () => saveEdit(i)]]) {
    const b = el("button", "btn-" + label.toLowerCase(), label);
    b.type = "button";
    b.addEventListener("click", fn);
    buttons.appendChild(b);
  }
  c.appendChild(buttons);
  c.addEventListener("click", (ev) => { if (ev.target.tagName !== "BUTTON") { state.cursor = i; highlight(); } });
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

async function act(what, ids) {
  if (!ids.length) { say("Nothing selected (j/k to move, x to check).", true); return; }
  const by = reviewer();
  if (!by) return;
  try {
    const res = await api("/api/items/" + what, { method: "POST", body: JSON.stringify({ ids: ids, by: by, reason: $("reason").value }) });
    const bad = res.filter((r) => !r.ok);
    say(res.map((r) => r.message).join("; "), bad.length > 0);
  } catch (e) { say(what + " failed: " + e.message, true); }
  await load();
}

function startEdit(i) {
  state.cursor = i;
  highlight();
  const c = cards()[i];
  if (!c) return;
  const t = c.querySelector("textarea.draft");
  t.readOnly = false;
  c.classList.add("editing");
  state.editing = Number(c.dataset.id);
  t.focus();
  t.setSelectionRange(t.value.length, t.value.length);
}

async function saveEdit(i) {
  const c = cards()[i];
  if (!c) return;
  const by = reviewer();
  if (!by) return;
  const text = c.querySelector("textarea.draft").value;
  try {
    await api("/api/items/" + c.dataset.id + "/edit", { method: "POST", body: JSON.stringify({ text: text, by: by }) });
    say("saved #" + c.dataset.id + " (approve it to send the new text)");
  } catch (e) { say("edit failed: " + e.message, true); }
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
  if (ev.key === "j") { state.cursor = Math.min(n - 1, state.cursor + 1); highlight(); }
  else if (ev.key === "k") { state.cursor = Math.max(0, state.cursor - 1); highlight(); }
  else if (ev.key === "x") { const c = cards()[state.cursor]; if (c) { const b = c.querySelector(".check"); b.checked = !b.checked; } }
  else if (ev.key === "a" || ev.key === "r") {
    const ids = checkedIds();
    const cur = cards()[state.cursor];
    act(ev.key === "a" ? "approve" : "reject", ids.length ? ids : (cur ? [Number(cur.dataset.id)] : []));
  } else if (ev.key === "e") { if (state.cursor >= 0) { ev.preventDefault(); startEdit(state.cursor); } }
  else return;
  ev.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => { init().catch((e) => say("could not load: " + e.message, true)); });
