// The Postern administration console: one page over the JSON API (/api/v1, described by
// /api/v1/openapi.json). Every change sends the session's CSRF token; nothing from the server is
// ever put in the page as HTML (text nodes only).
"use strict";

const state = { me: null, csrf: null };

// ---- DOM helpers -------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v; // CSSOM: allowed by the CSP, unlike a style attribute
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function flash(text, bad) {
  const f = document.getElementById("flash");
  f.textContent = text;
  f.className = bad ? "bad" : "";
  f.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { f.hidden = true; }, bad ? 8000 : 3000);
}

function size(n) {
  if (n === null || n === undefined) return "unlimited";
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function when(t) { return t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) : "-"; }

function table(headers, rows, id) {
  // In a box that scrolls sideways on a narrow screen, not the whole page.
  return el("div", { class: "scroll" }, el("table", { id },
    el("thead", {}, el("tr", {}, headers.map(h => el("th", { class: h.cls }, h.text || h)))),
    el("tbody", {}, rows)));
}

function field(label, attrs) { return el("label", {}, label, el("input", attrs)); }

function form(id, children, submit) {
  return el("form", { class: "inline", id, onsubmit: async e => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(e.target).entries());
    try { await submit(data, e.target); } catch (err) { flash(err.message, true); }
  } }, children);
}

// ---- API -----------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = state.csrf || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch("/api/v1" + path, { method, headers, credentials: "same-origin",
                                            body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({ message: "the server answered " + r.status }));
  if (!r.ok) {
    if (r.status === 401 && path !== "/session") { showLogin(); }
    throw new Error(data.message || ("error " + r.status));
  }
  return data;
}

const enc = encodeURIComponent;

// ---- Login ---------------------------------------------------------------------------------

function showLogin() {
  state.me = null;
  state.csrf = null;
  // Nothing of the last login stays on a shared screen.
  document.getElementById("login-user").value = "";
  document.getElementById("login-password").value = "";
  document.getElementById("page").replaceChildren();
  document.getElementById("top").hidden = true;
  document.getElementById("page").hidden = true;
  document.getElementById("login-page").hidden = false;
}

async function start() {
  document.getElementById("login-form").addEventListener("submit", async e => {
    e.preventDefault();
    const error = document.getElementById("login-error");
    error.textContent = "";
    try {
      const me = await api("POST", "/session", { user: document.getElementById("login-user").value,
                                                 password: document.getElementById("login-password").value });
      document.getElementById("login-password").value = "";
      signedIn(me);
    } catch (err) { error.textContent = err.message; }
  });
  document.getElementById("logout").addEventListener("click", async () => {
    try { await api("DELETE", "/session"); } catch (_) { /* logged out either way */ }
    showLogin();
  });
  window.addEventListener("hashchange", render);
  try { signedIn(await api("GET", "/me")); } catch (_) { showLogin(); }
}

function signedIn(me) {
  state.me = me;
  if (me.csrf) state.csrf = me.csrf;
  document.getElementById("login-page").hidden = true;
  document.getElementById("top").hidden = false;
  document.getElementById("who").textContent = me.user + " (" + me.role + ")";
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = me.role === "user";
  for (const a of document.querySelectorAll("[data-site]")) a.hidden = me.role !== "site-admin";
  if (!location.hash || location.hash === "#/") location.hash = me.role === "user" ? "#/me" : "#/users";
  else render();
}

// ---- Pages ---------------------------------------------------------------------------------

const pages = {};

async function render() {
  if (!state.me) return;
  const [path, query] = location.hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("current", location.hash.startsWith(a.getAttribute("href")));
  const page = document.getElementById("page");
  page.hidden = false;
  // data-busy and data-rendered tell scripts (and the browser tests) when a page is complete.
  page.dataset.busy = "1";
  const handler = pages[parts[0]] || pages.users;
  try {
    const content = await handler(parts.slice(1), params);
    page.replaceChildren(...[content].flat(Infinity).filter(c => c !== null && c !== undefined));
  } catch (err) {
    page.replaceChildren(el("h1", { text: "Cannot show this page" }), el("p", { class: "error", text: err.message }));
  }
  page.dataset.rendered = location.hash;
  page.dataset.busy = "0";
}

pages.domains = async () => {
  const site = state.me.role === "site-admin";
  const list = await api("GET", "/domains?limit=10000");
  const rows = list.items.map(d => el("tr", { "data-domain": d.name },
    el("td", {}, el("a", { href: "#/users?domain=" + enc(d.name) }, d.name)),
    el("td", { class: "num" }, d.accounts), el("td", { class: "num" }, d.aliases),
    el("td", {}, el("a", { href: "#/domain/" + enc(d.name) }, "aliases"),
      site ? el("button", { class: "danger", type: "button", "data-action": "delete-domain", onclick: async () => {
        if (!confirm("Delete the domain " + d.name + "?")) return;
        try { await api("DELETE", "/domains/" + enc(d.name)); flash("Domain " + d.name + " deleted"); render(); } catch (e) { flash(e.message, true); }
      } }, "Delete") : null)));
  return [el("h1", { text: "Domains" }),
    site ? form("add-domain", [field("New domain", { name: "name", required: true, placeholder: "example.org" }), el("button", { type: "submit" }, "Add domain")],
      async data => { await api("POST", "/domains", { name: data.name }); flash("Domain " + data.name + " added"); render(); }) : null,
    table(["Domain", { text: "Accounts", cls: "num" }, { text: "Aliases", cls: "num" }, ""], rows, "domains"),
    el("p", {}, el("a", { href: "/api/v1/domains?format=csv", download: "domains.csv" }, "Export as CSV"))];
};

pages.domain = async ([name]) => {
  const d = await api("GET", "/domains/" + enc(name));
  const aliases = await api("GET", "/domains/" + enc(name) + "/aliases?limit=10000");
  const rows = aliases.items.map(a => el("tr", { "data-alias": a.address }, el("td", {}, a.address), el("td", {}, a.targets.join(", ")),
    el("td", {}, el("button", { class: "danger", type: "button", "data-action": "delete-alias", onclick: async () => {
      try { await api("DELETE", "/aliases/" + enc(a.address)); flash("Alias " + a.address + " removed"); render(); } catch (e) { flash(e.message, true); }
    } }, "Remove"))));
  return [el("h1", { text: "Domain " + d.name }),
    el("p", {}, d.accounts + " accounts, " + d.aliases + " aliases. Administrators: " + ((d.administrators || []).join(", ") || "none")),
    el("h2", { text: "Aliases" }),
    form("add-alias", [field("Address (or @" + d.name + " for the catch-all)", { name: "address", required: true }),
      field("Targets (comma-separated)", { name: "targets", required: true }), el("button", { type: "submit" }, "Set alias")],
    async data => {
      const address = data.address.includes("@") ? data.address : data.address + "@" + d.name;
      await api("PUT", "/aliases/" + enc(address), { targets: data.targets.split(",").map(s => s.trim()).filter(Boolean) });
      flash("Alias " + address + " set"); render();
    }),
    table(["Address", "Targets", ""], rows, "aliases")];
};

pages.users = async (_, params) => {
  const domain = params.get("domain") || "";
  const q = params.get("q") || "";
  const offset = Number(params.get("offset") || 0);
  const query = new URLSearchParams({ limit: "100", offset: String(offset) });
  if (domain) query.set("domain", domain);
  if (q) query.set("q", q);
  const list = await api("GET", "/users?" + query);
  const domains = (await api("GET", "/domains?limit=10000")).items.map(d => d.name);
  const rows = list.items.map(u => el("tr", { "data-user": u.name },
    el("td", {}, el("a", { href: "#/user/" + enc(u.name) }, u.name)),
    el("td", {}, el("span", { class: u.enabled ? "pill" : "pill off" }, u.enabled ? "active" : "suspended")),
    el("td", {}, u.level), el("td", { class: "num wide" }, size(u.bytesUsed) + " / " + size(u.quotaBytes)),
    el("td", { class: "num wide" }, u.messagesUsed)));
  const search = form("search-users", [
    el("label", {}, "Domain", el("select", { name: "domain" }, el("option", { value: "" }, "all"),
      domains.map(n => el("option", { value: n, selected: n === domain }, n)))),
    field("Search", { name: "q", value: q, placeholder: "part of the address" }), el("button", { type: "submit" }, "Search")],
  async data => { location.hash = "#/users?" + new URLSearchParams(Object.entries(data).filter(([, v]) => v)); });
  const create = form("add-user", [field("New account", { name: "name", required: true, placeholder: "name@" + (domain || domains[0] || "example.org") }),
    field("Password", { name: "password", type: "password", required: true, autocomplete: "new-password" }),
    el("label", {}, "Level", el("select", { name: "level" }, el("option", { value: "user" }, "user"), el("option", { value: "domain-admin" }, "domain administrator"),
      state.me.role === "site-admin" ? el("option", { value: "site-admin" }, "site administrator") : null)),
    field("Quota (MiB, empty: none)", { name: "quota", type: "number", min: "0" }), el("button", { type: "submit" }, "Create account")],
  async data => {
    const body = { name: data.name, password: data.password, level: data.level };
    if (data.quota) body.quotaBytes = Number(data.quota) * 1048576;
    await api("POST", "/users", body);
    flash("Account " + data.name + " created"); render();
  });
  const pager = el("p", {}, list.total + (list.total === 1 ? " account. " : " accounts. "),
    offset > 0 ? el("a", { href: "#/users?" + new URLSearchParams({ domain, q, offset: String(Math.max(0, offset - 100)) }) }, "Previous") : null, " ",
    offset + 100 < list.total ? el("a", { href: "#/users?" + new URLSearchParams({ domain, q, offset: String(offset + 100) }) }, "Next") : null, " ",
    el("a", { href: "/api/v1/users?format=csv" + (domain ? "&domain=" + enc(domain) : ""), download: "accounts.csv" }, "Export as CSV"), " ",
    el("a", { href: "#/import", id: "import-link" }, "Import accounts from a file"));
  return [el("h1", { text: "Accounts" }), search, create,
    table(["Account", "State", "Level", { text: "Used / quota", cls: "num wide" }, { text: "Messages", cls: "num wide" }], rows, "users"), pager];
};

// Bulk creation: a CSV or HR export (email, password or hash, quota, admin) or a passwd-file;
// "Check" is the dry run, "Import" runs in the background with a progress bar.
pages.import = async () => {
  const site = state.me.role === "site-admin";
  const progress = el("progress", { id: "import-progress", max: "1", value: "0", hidden: true });
  const status = el("p", { id: "import-status", role: "status" });
  const result = el("div", { id: "import-result" });
  const report = (r, dryRun) => {
    result.replaceChildren(
      el("p", { id: "import-summary" }, (dryRun ? r.imported + " accounts would be created" : r.imported + " accounts created") + ", "
        + r.refused.length + (r.refused.length === 1 ? " row refused." : " rows refused.")
        + (r.newDomains.length ? " New domains: " + r.newDomains.join(", ") + "." : "")),
      r.refused.length ? table([{ text: "Line", cls: "num" }, "Why it was refused"],
        r.refused.map(x => el("tr", { "data-line": x.line }, el("td", { class: "num" }, x.line), el("td", {}, x.reason))), "import-refused") : null);
  };
  const send = async (form, dryRun) => {
    const file = form.elements.file.files[0];
    if (!file) throw new Error("choose a file first");
    const query = new URLSearchParams(dryRun ? { dryRun: "true" } : { background: "true" });
    if (form.elements.createDomains && form.elements.createDomains.checked) query.set("createDomains", "true");
    result.replaceChildren();
    status.textContent = dryRun ? "Checking " + file.name + "..." : "Sending " + file.name + "...";
    const r = await fetch("/api/v1/users/import?" + query, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "text/csv", "X-CSRF-Token": state.csrf || "" }, body: await file.text() });
    const data = await r.json().catch(() => ({ message: "the server answered " + r.status }));
    if (!r.ok) throw new Error(data.message || ("error " + r.status));
    if (dryRun) { status.textContent = "Checked " + file.name + ": nothing was created."; report(data, true); return; }
    // The job's progress until it holds the report.
    progress.hidden = false;
    let job = data;
    while (job.state === "running") {
      progress.max = String(Math.max(1, job.total));
      progress.value = String(job.done);
      status.textContent = "Created " + job.done + " of " + job.total + " accounts...";
      await new Promise(done => setTimeout(done, 300));
      job = await api("GET", "/jobs/" + enc(job.id));
    }
    progress.value = progress.max;
    if (job.state !== "done") throw new Error(job.error || "the import failed");
    status.textContent = "Imported " + file.name + ".";
    report(job.result, false);
  };
  const f = el("form", { class: "inline", id: "import-form", onsubmit: e => e.preventDefault() },
    el("label", {}, "File (CSV: email, password or hash, quota, admin; or a passwd-file)",
      el("input", { type: "file", name: "file", id: "import-file", accept: ".csv,.txt,text/csv,text/plain", required: true })),
    site ? el("label", {}, el("input", { type: "checkbox", name: "createDomains" }), " create missing domains") : null,
    el("button", { type: "button", class: "secondary", id: "import-check", onclick: () => send(f, true).catch(e => { status.textContent = ""; flash(e.message, true); }) }, "Check"),
    el("button", { type: "button", id: "import-run", onclick: () => send(f, false).catch(e => { status.textContent = ""; flash(e.message, true); }) }, "Import"));
  return [el("h1", { text: "Import accounts" }), f, progress, status, result,
    el("p", {}, "Every refused row is listed with its line; the other rows are created. ", el("a", { href: "#/users" }, "Back to the accounts"))];
};

pages.user = async ([name]) => {
  const u = await api("GET", "/users/" + enc(name));
  const boxes = await api("GET", "/users/" + enc(name) + "/mailboxes?limit=10000");
  const reload = msg => { flash(msg); render(); };
  const patch = async (body, msg) => { await api("PATCH", "/users/" + enc(name), body); reload(msg); };
  const folder = async (m, body, msg) => {
    try { await api("PATCH", "/users/" + enc(name) + "/mailboxes/" + enc(m.name), body); reload(msg); } catch (e) { flash(e.message, true); }
  };
  const mailboxRows = boxes.items.map(m => el("tr", { "data-mailbox": m.name }, el("td", {}, m.name), el("td", {}, m.attributes.join(" ")),
    el("td", { class: "num" }, m.messages), el("td", { class: "num" }, m.unseen),
    el("td", {}, el("input", { type: "checkbox", checked: m.subscribed, "aria-label": "subscribed to " + m.name, "data-subscribe": m.name,
      onchange: e => folder(m, { subscribed: e.target.checked }, (e.target.checked ? "Subscribed to " : "Unsubscribed from ") + m.name) })),
    el("td", { class: "actions" }, el("a", { href: "#/acl/" + enc(name) + "/" + enc(m.name) }, "rights"),
      m.name.toUpperCase() === "INBOX" ? null : el("button", { type: "button", class: "secondary", "data-rename": m.name, onclick: () => {
        const to = prompt("New name for " + m.name, m.name);
        if (to && to !== m.name) folder(m, { name: to }, "Renamed " + m.name + " to " + to);
      } }, "rename"))));
  const percent = u.quotaBytes ? Math.min(100, Math.round(100 * u.bytesUsed / u.quotaBytes)) : 0;
  return [el("h1", { text: "Account " + u.name }),
    el("p", {}, el("span", { class: u.enabled ? "pill" : "pill off", id: "user-state" }, u.enabled ? "active" : "suspended"), " ", u.level,
      ". Used ", size(u.bytesUsed), " of ", size(u.quotaBytes), " ", el("span", { class: "meter" }, el("span", { style: "width:" + percent + "%" })),
      ", ", u.messagesUsed, " messages of ", u.quotaMessages ?? "unlimited", ". Created ", when(u.created), "."),
    el("div", { class: "actions" },
      el("button", { type: "button", id: "toggle-enabled", class: u.enabled ? "danger" : "", onclick: () => patch({ enabled: !u.enabled }, u.enabled ? "Suspended" : "Enabled").catch(e => flash(e.message, true)) },
        u.enabled ? "Suspend" : "Enable"),
      el("button", { type: "button", class: "danger", id: "delete-user", onclick: async () => {
        if (!confirm("Delete " + name + " and all its mail?")) return;
        try { await api("DELETE", "/users/" + enc(name)); flash("Account deleted"); location.hash = "#/users"; } catch (e) { flash(e.message, true); }
      } }, "Delete account")),
    el("h2", { text: "Quota" }),
    form("set-quota", [field("Bytes (empty: no limit)", { name: "bytes", type: "number", min: "0", value: u.quotaBytes ?? "" }),
      field("Messages (empty: no limit)", { name: "messages", type: "number", min: "0", value: u.quotaMessages ?? "" }), el("button", { type: "submit" }, "Set quota")],
    data => patch({ quotaBytes: data.bytes === "" ? null : Number(data.bytes), quotaMessages: data.messages === "" ? null : Number(data.messages) }, "Quota set")),
    el("h2", { text: "Password and level" }),
    form("set-password", [field("New password", { name: "password", type: "password", required: true, autocomplete: "new-password" }), el("button", { type: "submit" }, "Set password")],
      data => patch({ password: data.password }, "Password set")),
    form("set-level", [el("label", {}, "Level", el("select", { name: "level" }, ["user", "domain-admin"].concat(state.me.role === "site-admin" ? ["site-admin"] : [])
      .map(l => el("option", { value: l, selected: l === u.level }, l)))), el("button", { type: "submit" }, "Set level")],
    data => patch({ level: data.level }, "Level set")),
    state.me.role === "site-admin" && u.level === "domain-admin" ? form("set-delegated", [field("Also administers (comma-separated domains)", { name: "domains", value: (u.delegatedDomains || []).join(", ") }),
      el("button", { type: "submit" }, "Delegate")], data => patch({ delegatedDomains: data.domains.split(",").map(s => s.trim()).filter(Boolean) }, "Domains delegated")) : null,
    el("h2", { text: "Folders" }),
    form("add-mailbox", [field("New folder", { name: "name", required: true }), el("button", { type: "submit" }, "Create folder")], async data => {
      await api("POST", "/users/" + enc(name) + "/mailboxes", { name: data.name }); reload("Folder created");
    }),
    table(["Folder", "Kind", { text: "Messages", cls: "num" }, { text: "Unseen", cls: "num" }, "Subscribed", ""], mailboxRows, "mailboxes")];
};

pages.acl = async ([user, mailbox]) => {
  const base = "/users/" + enc(user) + "/mailboxes/" + enc(mailbox) + "/acl";
  const acl = await api("GET", base);
  const rows = acl.items.map(a => el("tr", { "data-identifier": a.identifier }, el("td", {}, a.identifier), el("td", {}, a.rights),
    el("td", {}, el("button", { type: "button", class: "danger", onclick: async () => {
      try { await api("DELETE", base + "/" + enc(a.identifier)); flash("Rights removed"); render(); } catch (e) { flash(e.message, true); }
    } }, "Remove"))));
  return [el("h1", { text: "Rights on " + mailbox + " of " + user }),
    el("p", { text: "Letters (RFC 4314): l lookup, r read, s keep seen, w write flags, i insert, p post, k create folders, x delete folder, t delete messages, e expunge, a administer. Give others rights to share the folder." }),
    form("set-acl", [field("Who (an account, or anyone)", { name: "identifier", required: true }), field("Rights", { name: "rights", required: true, value: "lr" }),
      el("button", { type: "submit" }, "Set rights")], async data => {
      await api("PUT", base + "/" + enc(data.identifier), { rights: data.rights }); flash("Rights set"); render();
    }),
    table(["Who", "Rights", ""], rows, "acl"), el("p", {}, el("a", { href: "#/user/" + enc(user) }, "Back to " + user))];
};

// Another node of the console: "?node=NAME" on every call (the console passes it on), "" for this one.
function onNode(node) { return node ? "node=" + enc(node) : ""; }
function withNode(path, node) { return node ? path + (path.includes("?") ? "&" : "?") + onNode(node) : path; }

async function nodeChoice(selected) {
  const nodes = (await api("GET", "/nodes")).items;
  if (nodes.length < 2) return null;
  return el("label", {}, "Node", el("select", { name: "node" }, nodes.map(n =>
    el("option", { value: n.local ? "" : n.name, selected: (n.local ? "" : n.name) === selected, disabled: n.up === false }, n.name + (n.up === false ? " (down)" : "")))));
}

pages.queue = async (_, params) => {
  const node = params.get("node") || "";
  const query = new URLSearchParams();
  for (const k of ["sender", "recipient", "queue", "reason"]) if (params.get(k)) query.set(k, params.get(k));
  const filter = Object.fromEntries(query.entries());
  query.set("limit", "1000");
  if (node) query.set("node", node);
  const list = await api("GET", "/queue?" + query);
  const choice = await nodeChoice(node);
  const act = async (id, action) => {
    try { await api("POST", withNode("/queue/" + enc(id) + "/" + action, node)); flash(action + ": " + id); render(); } catch (e) { flash(e.message, true); }
  };
  const rows = list.items.map(m => el("tr", { "data-queue-id": m.id },
    el("td", {}, el("a", { href: "#/message/" + enc(m.id) + (node ? "?" + onNode(node) : "") }, m.id)), el("td", {}, m.queue), el("td", {}, m.sender || "<>"),
    el("td", {}, m.pending.map(p => p.address).join(", ")), el("td", { class: "wide" }, when(m.arrival)),
    el("td", { class: "wide" }, m.holdReason || (m.pending.find(p => p.lastReply) || {}).lastReply || ""),
    el("td", { class: "actions" }, ["hold", "release", "flush", "requeue", "delete"].map(a =>
      el("button", { type: "button", class: a === "delete" ? "danger" : "secondary", "data-action": a, onclick: () => act(m.id, a) }, a)))));
  return [el("h1", { text: node ? "Queue of " + node : "Queue" }),
    form("queue-filter", [choice, field("Sender", { name: "sender", value: filter.sender || "" }), field("Recipient", { name: "recipient", value: filter.recipient || "" }),
      el("label", {}, "Queue", el("select", { name: "queue" }, ["", "incoming", "active", "deferred", "hold"].map(q => el("option", { value: q, selected: q === (filter.queue || "") }, q || "all")))),
      field("Reason", { name: "reason", value: filter.reason || "" }), el("button", { type: "submit" }, "Filter")],
    async data => { location.hash = "#/queue?" + new URLSearchParams(Object.entries(data).filter(([, v]) => v)); }),
    form("queue-bulk", [el("label", {}, "On all " + list.total + " shown", el("select", { name: "action" }, ["hold", "release", "flush", "requeue", "delete"].map(a => el("option", { value: a }, a)))),
      el("button", { type: "submit" }, "Apply")], async data => {
      if (data.action === "delete" && !confirm("Delete " + list.total + " messages without a bounce?")) return;
      const r = await api("POST", withNode("/queue/bulk", node), { action: data.action, filter });
      flash(data.action + ": " + r.done + " of " + r.matched); render();
    }),
    table(["Id", "Queue", "Sender", "Recipients", { text: "Arrived", cls: "wide" }, { text: "Reason", cls: "wide" }, ""], rows, "queue"),
    el("p", {}, list.total + (list.total === 1 ? " message. " : " messages. "), el("a", { href: withNode("/api/v1/queue?format=csv", node), download: "queue.csv" }, "Export as CSV"))];
};

pages.message = async ([id], params) => {
  const node = params.get("node") || "";
  const m = await api("GET", withNode("/queue/" + enc(id), node));
  return [el("h1", { text: "Queued message " + id }),
    el("p", {}, m.entry.queue + ", " + size(m.entry.size) + ", from " + (m.entry.sender || "<>") + ", " + m.entry.attempts + " attempts, arrived " + when(m.entry.arrival)),
    table(["Recipient", "Last reply"], m.entry.pending.map(p => el("tr", {}, el("td", {}, p.address), el("td", {}, p.lastReply || "")))),
    el("h2", { text: "Headers" }), el("pre", { id: "headers" }, m.headers), el("p", {}, el("a", { href: "#/queue" + (node ? "?" + onNode(node) : "") }, "Back to the queue"))];
};

pages.reports = async (_, params) => {
  const days = Number(params.get("days") || 1);
  const domain = params.get("domain") || "";
  const to = Math.floor(Date.now() / 1000) + 1;
  const query = new URLSearchParams({ from: String(to - days * 86400), to: String(to), bucket: days > 3 ? "day" : "hour" });
  if (domain) query.set("domain", domain);
  const r = await api("GET", "/reports?" + query);
  const domains = (await api("GET", "/domains?limit=10000")).items.map(d => d.name);
  const ranked = (title, id, rows) => [el("h2", { text: title }),
    table(["", { text: "Count", cls: "num" }], rows.map(x => el("tr", {}, el("td", {}, x.name), el("td", { class: "num" }, x.count))), id)];
  const columns = ["received", "quarantined", "rejected", "delivered", "deferred", "bounced"];
  return [el("h1", { text: "Reports" }),
    form("report-range", [el("label", {}, "Period", el("select", { name: "days" }, [[1, "last 24 hours"], [7, "last 7 days"], [30, "last 30 days"]]
        .map(([n, label]) => el("option", { value: String(n), selected: n === days }, label)))),
      el("label", {}, "Domain", el("select", { name: "domain" }, el("option", { value: "" }, "all"), domains.map(n => el("option", { value: n, selected: n === domain }, n)))),
      el("button", { type: "submit" }, "Show")],
    async data => { location.hash = "#/reports?" + new URLSearchParams(Object.entries(data).filter(([, v]) => v)); }),
    el("img", { id: "report-chart", src: "/api/v1/reports/chart.svg?" + query, alt: "Mail per " + (days > 3 ? "day" : "hour"), width: "800", height: "300", class: "chart" }),
    r.nodes ? el("p", { id: "report-nodes", class: r.nodes.every(n => n.included) ? "" : "error" },
      "Sum over " + r.nodes.filter(n => n.included).map(n => n.name).join(", ") + ".",
      r.nodes.filter(n => !n.included).map(n => " Not counted: " + n.name + " (" + (n.error || "no answer") + ").")) : null,
    table(columns.map(c => ({ text: c, cls: "num" })), [el("tr", { id: "report-totals" }, columns.map(c => el("td", { class: "num", "data-count": c }, r.totals[c])))], "totals"),
    el("h2", { text: "By listener" }),
    table(["Listener"].concat(columns.map(c => ({ text: c, cls: "num" }))), Object.entries(r.listeners).map(([name, counts]) =>
      el("tr", {}, el("td", {}, name), columns.map(c => el("td", { class: "num" }, counts[c])))), "listeners"),
    el("h2", { text: "Stopped by filters" }),
    table(["Filter", { text: "rejected", cls: "num" }, { text: "quarantined", cls: "num" }], Object.entries(r.filters || {}).map(([name, counts]) =>
      el("tr", { "data-filter": name }, el("td", {}, name), el("td", { class: "num" }, counts.rejected), el("td", { class: "num" }, counts.quarantined))), "filters"),
    ranked("Top senders", "top-senders", r.topSenders), ranked("Top recipients", "top-recipients", r.topRecipients),
    ranked("Top destination domains", "top-destinations", r.topDestinations), ranked("Rejection reasons", "rejection-reasons", r.rejectionReasons),
    ranked("Deferral reasons", "deferral-reasons", r.deferralReasons), ranked("Bounce reasons", "bounce-reasons", r.bounceReasons),
    ranked("Quarantine reasons", "quarantine-reasons", r.quarantineReasons),
    el("p", {}, el("a", { href: "/api/v1/reports?format=csv&" + query, download: "report.csv" }, "Export as CSV"))];
};

pages.audit = async () => {
  const rows = (await api("GET", "/audit?limit=500")).map(a => el("tr", {}, el("td", {}, when(a.time)), el("td", {}, a.actor), el("td", {}, a.action),
    el("td", {}, a.target), el("td", { class: "wide" }, a.client), el("td", { class: "wide" }, a.detail)));
  return [el("h1", { text: "Audit log" }), table(["When (UTC)", "Who", "What", "On", { text: "From", cls: "wide" }, { text: "Detail", cls: "wide" }], rows, "audit"),
    el("p", {}, el("a", { href: "/api/v1/audit?format=csv&limit=10000", download: "audit.csv" }, "Export as CSV"))];
};

pages.nodes = async () => {
  const nodes = (await api("GET", "/nodes")).items;
  const site = state.me.role === "site-admin";
  const rows = nodes.map(n => {
    const st = n.status || {};
    const queue = st.queue ? Object.entries(st.queue).map(([k, v]) => k + " " + v).join(", ") : "";
    return el("tr", { "data-node": n.name, class: n.up === false ? "down" : "" },
      el("td", {}, site ? el("a", { href: "#/status" + (n.local ? "" : "?" + onNode(n.name)) }, n.name) : n.name),
      el("td", { "data-state": n.up === false ? "down" : n.up ? "up" : "unknown" }, n.up === false ? "down" : n.up ? "up" : "not checked yet"),
      el("td", {}, when(n.lastSeen)), site ? el("td", {}, queue) : null,
      site ? el("td", { "data-alerts": (st.alerts || []).length }, (st.alerts || []).map(a => el("div", { class: "error" }, a.message))) : null, site ? el("td", {}, n.error || (n.local ? "this node" : n.url || "")) : null,
      el("td", {}, el("a", { href: "#/queue" + (n.local ? "" : "?" + onNode(n.name)) }, "queue")));
  });
  return [el("h1", { text: "Nodes" }),
    table(["Node", "State", "Last seen"].concat(site ? ["Queue", "Alerts", "Address or error"] : []).concat([""]), rows, "nodes"),
    el("p", {}, "Each node's status is fetched every heartbeat; a node that does not answer shows as down and the reports sum the others.")];
};

pages.status = async (_, params) => {
  const node = params.get("node") || "";
  const s = await api("GET", withNode("/status", node));
  const m = (s.master || {}).status || {};
  const reload = (s.master || {}).lastReload;
  const rows = (list, id, headers, cells) => table(headers, (list || []).map(x => el("tr", {}, cells(x).map(c => el("td", {}, c)))), id);
  const alerts = await api("GET", withNode("/alerts", node));
  return [el("h1", { text: "Status of " + s.node }),
    el("div", { id: "alerts" }, alerts.active.length === 0 ? el("p", {}, "No alert holds" + (alerts.checked ? " (checked " + when(alerts.checked) + ")." : "."))
      : alerts.active.map(a => el("p", { class: "error alert", "data-alert": a.kind }, "Alert since " + when(a.since) + ": " + a.message)),
      el("p", {}, alerts.mailedTo.length ? "Alerts are mailed to " + alerts.mailedTo.join(", ") + "." : "Alerts are not mailed (alert_to is empty).")),
    el("p", { id: "master-state", class: s.masterRunning ? "" : "error" },
      s.masterRunning ? "The master is running (heartbeat " + Math.round(s.masterHeartbeatAge) + " s ago)"
                      : "The master is not answering: its last heartbeat is " + (s.masterHeartbeatAge === undefined ? "missing" : Math.round(s.masterHeartbeatAge) + " s old")),
    table(["", ""], [["Domains", s.domains ?? "no store"], ["Accounts", s.accounts ?? "no store"], ["Worker", s.pid], ["Listener", s.listener]]
      .concat(Object.entries(s.queue).map(([k, v]) => ["Queue " + k, v])).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "num" }, v))), "status"),
    el("h2", { text: "Generation " + (m.generation ?? "?") }),
    el("div", { class: "actions" }, el("button", { type: "button", id: "reload", onclick: async () => {
      if (!confirm("Reload the configuration of " + s.node + "? Sessions are not dropped; a config that does not load changes nothing.")) return;
      try { const r = await api("POST", withNode("/reload", node)); flash(r.message); render(); } catch (e) { flash(e.message, true); }
    } }, "Reload configuration")),
    el("p", { id: "reloads" }, (m.reloads ?? 0) + " reloads, " + (m.failedReloads ?? 0) + " refused, " + (m.workerRestarts ?? 0) + " worker restarts. ",
      reload ? "Last reload " + when(Math.floor(reload.time)) + ": " + reload.message : "No reload since the start."),
    rows(m.workers, "workers", ["Worker", "Generation", "State", "Sessions", "Up (s)"], w => [w.pid, w.generation, w.state, w.sessions ?? "", Math.round(w.uptimeSeconds)]),
    el("h2", { text: "Plugins" }), rows(m.plugins, "plugins", ["Plugin", "Version"], p => [p.name, p.version]),
    el("h2", { text: "Past alerts" }), rows(alerts.history.slice(0, 20), "alert-history", ["Since", "Ended", "Alert"], a => [when(a.since), a.ended ? when(a.ended) : "holds", a.message]),
    el("h2", { text: "Listeners" }), rows(m.listeners, "listeners", ["Name", "Address", "Port", "Protocol", "TLS"], l => [l.name, l.address, l.port, l.plugin, l.tls])];
};

pages.me = async () => {
  const me = await api("GET", "/me");
  const fwd = await api("GET", "/me/forwarding");
  let vacation = null;
  try { vacation = await api("GET", "/me/vacation"); } catch (_) { vacation = null; }
  return [el("h1", { text: "My account" }),
    el("p", {}, me.user + ": used " + size(me.bytesUsed) + " of " + size(me.quotaBytes) + ", " + me.messagesUsed + " messages."),
    el("h2", { text: "Password" }),
    form("my-password", [field("Current password", { name: "current", type: "password", required: true, autocomplete: "current-password" }),
      field("New password", { name: "password", type: "password", required: true, autocomplete: "new-password" }), el("button", { type: "submit" }, "Change password")],
    async (data, f) => { await api("PUT", "/me/password", data); f.reset(); flash("Password changed"); }),
    el("h2", { text: "Forwarding" }),
    form("my-forwarding", [field("Forward to (comma-separated, empty: off)", { name: "to", value: fwd.to.join(", ") }),
      el("label", {}, "Keep a copy", el("select", { name: "keep" }, el("option", { value: "yes", selected: fwd.keepCopy }, "yes"), el("option", { value: "no", selected: !fwd.keepCopy }, "no"))),
      el("button", { type: "submit" }, "Save forwarding")],
    async data => { await api("PUT", "/me/forwarding", { to: data.to.split(",").map(s => s.trim()).filter(Boolean), keepCopy: data.keep === "yes" }); flash("Forwarding saved"); render(); }),
    el("h2", { text: "Vacation reply" }),
    form("my-vacation", [field("Subject", { name: "subject", value: vacation ? vacation.subject : "Away", required: true }),
      field("Message", { name: "body", value: vacation ? vacation.body : "", required: true }), el("button", { type: "submit" }, vacation ? "Update" : "Turn on"),
      vacation ? el("button", { type: "button", class: "secondary", onclick: async () => { await api("DELETE", "/me/vacation"); flash("Vacation reply off"); render(); } }, "Turn off") : null],
    async data => { await api("PUT", "/me/vacation", { subject: data.subject, body: data.body }); flash("Vacation reply on"); render(); })];
};

document.addEventListener("DOMContentLoaded", start);
