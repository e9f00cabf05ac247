#!/usr/bin/python3
"""Drives Postern's admin API over HTTP and prints one JSON object of observations for
AdminAPITests to assert on. Nothing here decides pass or fail: it records what the server said.

    admin_api.py setup SETTINGS_JSON       # domain B's objects, tokens and queued mail, through the API
    admin_api.py isolation SETTINGS_JSON   # every operation of the OpenAPI document, as domain A's
                                           # administrator, with domain B's identifiers and with
                                           # identifiers that do not exist
    admin_api.py security SETTINGS_JSON    # CSRF, session fixation, brute force, plain HTTP off
                                           # loopback, cookie flags, rate limit
"""
import http.client, http.cookies, json, re, ssl, sys, urllib.parse


class Client:
    """One HTTP client: a bearer token or a session cookie (with its CSRF token)."""

    def __init__(self, host, port, token=None, tls=False, source=None):
        self.host, self.port, self.token, self.tls, self.source = host, port, token, tls, source
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, raw=None):
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=30, context=context,
                                               source_address=(self.source, 0) if self.source else None)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30,
                                              source_address=(self.source, 0) if self.source else None)
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if self.cookie:
            h["Cookie"] = "postern_admin=" + self.cookie
        if self.csrf and method not in ("GET", "HEAD") and "X-CSRF-Token" not in h:
            h["X-CSRF-Token"] = self.csrf
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        result = {"status": r.status, "body": text, "set_cookie": r.getheader("Set-Cookie") or "",
                  "content_type": r.getheader("Content-Type") or ""}
        conn.close()
        return result

    def json(self, method, path, body=None):
        r = self.request(method, path, body)
        try:
            r["json"] = json.loads(r["body"]) if r["body"] else None
        except ValueError:
            r["json"] = None
        return r

    def login(self, user, password):
        r = self.json("POST", "/api/v1/session", {"user": user, "password": password})
        if r["status"] == 201:
            self.cookie = cookie_value(r["set_cookie"])
            self.csrf = r["json"]["csrf"]
        return r


def cookie_value(set_cookie):
    c = http.cookies.SimpleCookie()
    c.load(set_cookie)
    return c["postern_admin"].value if "postern_admin" in c else None


# ---- Setup -------------------------------------------------------------------------------------

def setup(settings):
    """Logs in as each administrator, makes API tokens, and gives domain B one of everything:
    an alias, a catch-all, a folder with rights, a token, queued mail. Returns the identifiers."""
    import smtplib
    from email.message import EmailMessage
    host, port = "127.0.0.1", settings["port"]
    tokens = {}
    for who, password in [(settings["site"], settings["site_password"]), (settings["a_admin"], settings["a_admin_password"]),
                          (settings["b_user"], settings["b_user_password"])]:
        c = Client(host, port)
        r = c.login(who, password)
        if r["status"] != 201:
            raise SystemExit("login of %s: %s" % (who, r))
        r = c.json("POST", "/api/v1/tokens", {"name": "tests"})
        if r["status"] != 201:
            raise SystemExit("token of %s: %s" % (who, r))
        tokens[who] = r["json"]
    site = Client(host, port, token=tokens[settings["site"]]["secret"])
    b_user = settings["b_user"]
    for method, path, body in [("PUT", "/api/v1/aliases/sales@b.example", {"targets": [b_user]}),
                               ("PUT", "/api/v1/aliases/%40b.example", {"targets": [b_user]}),
                               ("POST", "/api/v1/users/%s/mailboxes" % b_user, {"name": "Projects"}),
                               ("PUT", "/api/v1/users/%s/mailboxes/Projects/acl/anyone" % b_user, {"rights": "lr"})]:
        r = site.json(method, path, body)
        if r["status"] >= 300:
            raise SystemExit("%s %s: %s" % (method, path, r))
    # Mail waiting in the queue: one from B, one from A (the relayhost refuses, so both defer).
    for sender, password in [(b_user, settings["b_user_password"]), (settings["a_user"], settings["a_user_password"])]:
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = sender, "far@remote.example", "queued from " + sender
        m.set_content("Waiting in the queue.\n")
        with smtplib.SMTP("127.0.0.1", settings["submission_port"]) as s:
            s.login(sender, password)
            s.send_message(m)
    # For the reports: one refused at RCPT (no such local account), one delivered locally.
    with smtplib.SMTP("127.0.0.1", settings["submission_port"]) as s:
        s.login(settings["a_user"], settings["a_user_password"])
        try:
            s.sendmail(settings["a_user"], ["nobody@a.example"], b"Subject: refused\r\n\r\nx\r\n")
        except smtplib.SMTPRecipientsRefused:
            pass
        s.sendmail(settings["a_user"], [b_user], b"Subject: local\r\n\r\nDelivered here.\r\n")
    import time
    deadline = time.time() + 30
    queue_id = None
    while time.time() < deadline and queue_id is None:
        items = site.json("GET", "/api/v1/queue?sender=" + b_user)["json"]["items"]
        queue_id = items[0]["id"] if items else None
        time.sleep(0.2)
    if queue_id is None:
        raise SystemExit("B's message never appeared in the queue")
    # A background job of domain B's administrator (one account imported).
    bea = Client(host, port)
    if bea.login("bea@b.example", "Bea-Secret-1")["status"] != 201:
        raise SystemExit("login of bea@b.example failed")
    r = bea.request("POST", "/api/v1/users/import?background=true", raw=b"email,password\r\nbjob@b.example,Pass-word-123\r\n",
                    headers={"Content-Type": "text/csv", "X-CSRF-Token": bea.csrf})
    if r["status"] != 202:
        raise SystemExit("B's import job: %s" % r)
    return {"site_token": tokens[settings["site"]]["secret"], "a_admin_token": tokens[settings["a_admin"]]["secret"],
            "b_token": tokens[b_user]["secret"], "b_token_id": tokens[b_user]["token"]["id"], "queue_id": queue_id,
            "b_job_id": json.loads(r["body"])["id"]}


# ---- Isolation ---------------------------------------------------------------------------------

def request_body(path, method, schema, ids):
    """A body for an operation, built from its schema: every property gets a value of its kind,
    naming the variant's domain (ids['domain']) wherever the value is an address or a domain."""
    d = ids["domain"]
    by_name = {
        "user": "someone@" + d, "password": "Pass-word-123", "current": "Not-the-password-1",
        "targets": ["someone@" + d], "rights": "lr", "action": "hold", "filter": {"domain": d},
        "subject": "away", "body": "back soon", "level": "user", "delegatedDomains": [d],
        # One's own forwarding is not about domain B: the same address in every variant.
        "to": ["fw@elsewhere.example"],
        "keepCopy": True, "enabled": False, "quotaBytes": 1000, "quotaMessages": 10, "periodDays": 7,
        "expiresDays": 1, "start": 0, "end": 4102444800,
    }
    body = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name == "name":
            if path == "/api/v1/domains":
                body[name] = d
            elif path == "/api/v1/users":
                body[name] = "newcomer@" + d
            elif path.endswith("/mailboxes"):
                body[name] = "New folder"
            else:
                body[name] = "isolation"
        elif name in by_name:
            body[name] = by_name[name]
        elif prop.get("type") == "integer":
            body[name] = 1
        elif prop.get("type") == "boolean":
            body[name] = True
        else:
            body[name] = "x"
    return body


def normalize(text, ids):
    # What a server makes up anew for every request (a token's secret and id, a time) is no answer
    # about domain B.
    text = re.sub(r'"(secret|id|created|expires|time|lastUsed)":("[^"]*"|[0-9]+)', r'"\1":"<NEW>"', text)
    for value in sorted(set(v for v in ids.values() if isinstance(v, str) and v), key=len, reverse=True):
        text = text.replace(value, "<ID>").replace(urllib.parse.quote(value, safe=""), "<ID>")
    return text


def isolation(settings):
    host, port = "127.0.0.1", settings["port"]
    doc = Client(host, port).json("GET", "/api/v1/openapi.json")["json"]
    a_admin = Client(host, port, token=settings["a_admin_token"])
    site = Client(host, port, token=settings["site_token"])
    b = settings["b_ids"]            # identifiers that exist in domain B
    variants = {
        "b": b,
        # Nothing of these exists: the same kinds in B's domain, and in a domain that does not exist.
        "ghost-in-b": settings["ghost_in_b"],
        "ghost-domain": settings["ghost_domain"],
    }
    out = {"operations": [], "mismatches": [], "control": [], "exercised": 0}
    operations = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            operations.append((path, method.upper(), op))
    for path, method, op in operations:
        if op.get("x-postern-access") == "open":
            continue
        params = [p for p in op.get("parameters", []) if p["in"] == "path"]
        queries = [p for p in op.get("parameters", []) if p["in"] == "query"]
        content = (op.get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        if schema and "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
        answers = {}
        for name, ids in variants.items():
            url = path
            used = {"domain": ids["domain"]}
            for p in params:
                kind = p["x-postern-identifier"]
                value = "hold" if kind == "queue-action" else ids[kind]
                used[kind] = value
                url = url.replace("{" + p["name"] + "}", urllib.parse.quote(value, safe="@"))
            # Query parameters that name something in a domain get the variant's.
            q = {}
            for p in queries:
                if p["name"] in ("domain",):
                    q["domain"] = ids["domain"]
                elif p["name"] in ("sender", "recipient"):
                    q[p["name"]] = ids["domain"]
            if q:
                url += "?" + urllib.parse.urlencode(q)
            if "text/csv" in content:
                # A file naming the variant's domain (an account in it, and one that exists in B).
                r = a_admin.request(method, url, raw=("email,password\r\nnewcomer@%s,Pass-word-123\r\n%s,Pass-word-123\r\n"
                                                      % (ids["domain"], ids["user"])).encode(), headers={"Content-Type": "text/csv"})
            else:
                body = request_body(path, method, schema, ids) if schema else None
                r = a_admin.json(method, url, body)
            answers[name] = {"url": url, "status": r["status"], "body": normalize(r["body"], {**ids, **used})}
            out["exercised"] += 1
        out["operations"].append(method + " " + path)
        reference = answers["ghost-domain"]
        for name in ("b", "ghost-in-b"):
            if (answers[name]["status"], answers[name]["body"]) != (reference["status"], reference["body"]):
                out["mismatches"].append({"op": method + " " + path, "variant": name, "answer": answers[name], "reference": reference})
        # The site administrator reads the same identifiers: proof that they exist.
        if method == "GET" and params:
            url = path
            for p in params:
                url = url.replace("{" + p["name"] + "}", urllib.parse.quote(b[p["x-postern-identifier"]], safe="@"))
            out["control"].append({"op": "GET " + path, "status": site.json("GET", url)["status"]})
    # Lists without identifiers: nothing of B may appear.
    for url in ["/api/v1/domains", "/api/v1/users", "/api/v1/users?format=csv", "/api/v1/queue", "/api/v1/queue?format=csv",
                "/api/v1/audit", "/api/v1/audit?format=csv", "/api/v1/me"]:
        r = a_admin.request("GET", url)
        out["lists"] = out.get("lists", []) + [{"url": url, "status": r["status"], "mentions_b": b["domain"] in r["body"]}]
    # B is as it was: the enumeration changed nothing there.
    out["after"] = {
        "bob": site.json("GET", "/api/v1/users/" + b["user"])["json"],
        "alias": site.json("GET", "/api/v1/aliases/" + b["alias"])["status"],
        "catch_all": site.json("GET", "/api/v1/aliases/" + urllib.parse.quote(b["catch-all"], safe="@"))["status"],
        "queue": site.json("GET", "/api/v1/queue/" + b["queue-id"])["json"],
        "acl": site.json("GET", "/api/v1/users/" + b["user"] + "/mailboxes/" + urllib.parse.quote(b["mailbox"]) + "/acl")["json"],
        "b_token": Client(host, port, token=settings["b_token"]).json("GET", "/api/v1/me")["status"],
        "a_admin_audit_domains": sorted(set(e.get("domain") or "" for e in a_admin.json("GET", "/api/v1/audit?limit=10000")["json"])),
        "site_audit_b_by_a_admin": [e for e in site.json("GET", "/api/v1/audit?limit=10000")["json"]
                                    if e["actor"] == settings["a_admin"] and (e.get("domain") or "") == b["domain"]],
    }
    return out


# ---- Bulk import ------------------------------------------------------------------------------

def bulk_import(settings):
    """10,000 rows for domain A with a dozen bad ones, as A's administrator: a dry run, then the
    import; returns both reports and what the store holds afterwards."""
    import time
    host, port = "127.0.0.1", settings["port"]
    boss = Client(host, port, token=settings["a_admin_token"])
    site = Client(host, port, token=settings["site_token"])
    lines = ["email,password,quota,admin"]
    bad = {}
    n = settings["import_rows"]
    for i in range(n):
        line = len(lines) + 1
        if i == 100: lines.append("not-an-address,Pass-word-1,,"); bad[line] = "not an email address"
        elif i == 900: lines.append("bulk00001@a.example,Pass-word-1,,"); bad[line] = "also on line"
        elif i == 1700: lines.append("nopass@a.example,,,"); bad[line] = "no password"
        elif i == 2500: lines.append("quota@a.example,Pass-word-1,lots,"); bad[line] = "not a size"
        elif i == 3300: lines.append("level@a.example,Pass-word-1,,emperor"); bad[line] = "is not user, domain-admin or site-admin"
        elif i == 4100: lines.append("x@b.example,Pass-word-1,,"); bad[line] = "no such domain 'b.example'"
        elif i == 4900: lines.append("y@nowhere.example,Pass-word-1,,"); bad[line] = "no such domain 'nowhere.example'"
        elif i == 5700: lines.append("boss2@a.example,Pass-word-1,,site-admin"); bad[line] = "only site administrators"
        elif i == 6500: lines.append("short@a.example,Pass-word-1"); bad[line] = "2 fields"
        elif i == 7300: lines.append(settings["a_user"] + ",Pass-word-1,,"); bad[line] = "already exists"
        elif i == 8100: lines.append("sp ace@a.example,Pass-word-1,,"); bad[line] = "not an email address"
        elif i == 8900: lines.append("two@@a.example,Pass-word-1,,"); bad[line] = "not an email address"
        else: lines.append("bulk%05d@a.example,Pass-word-%d,100M," % (i, i))
    data = ("\r\n".join(lines) + "\r\n").encode()
    out = {"bad": {str(k): v for k, v in bad.items()}}
    t = time.time()
    r = boss.request("POST", "/api/v1/users/import?dryRun=true", raw=data, headers={"Content-Type": "text/csv"})
    out["dry_run_seconds"] = time.time() - t
    out["dry_run"] = {"status": r["status"], "report": json.loads(r["body"]) if r["status"] == 200 else r["body"]}
    out["after_dry_run"] = site.json("GET", "/api/v1/users?domain=a.example&q=bulk&limit=1")["json"]["total"]
    # The import in the background: the answer is a job; its progress is polled until it holds
    # the report.
    t = time.time()
    r = boss.request("POST", "/api/v1/users/import?background=true", raw=data, headers={"Content-Type": "text/csv"})
    job = json.loads(r["body"]) if r["status"] == 202 else {}
    out["import_status"] = r["status"]
    progress = []
    while job.get("state") == "running" and time.time() - t < 300:
        progress.append(job["done"])
        time.sleep(0.05)
        job = boss.json("GET", "/api/v1/jobs/" + job["id"])["json"]
    out["import_seconds"] = time.time() - t
    out["progress"] = progress
    out["job"] = {k: v for k, v in job.items() if k != "result"}
    out["import"] = {"status": 200 if job.get("state") == "done" else job.get("state"), "report": job.get("result")}
    out["job_for_another"] = Client(host, port, token=settings["b_token"]).json("GET", "/api/v1/jobs/" + job.get("id", "x"))["status"]
    out["job_for_site"] = site.json("GET", "/api/v1/jobs/" + job.get("id", "x"))["status"]
    out["after_import"] = site.json("GET", "/api/v1/users?domain=a.example&q=bulk&limit=1")["json"]["total"]
    out["in_b"] = site.json("GET", "/api/v1/users/x@b.example")["status"]
    out["sample"] = site.json("GET", "/api/v1/users/bulk00002@a.example")["json"]
    # (bea's one-row import of domain B in the setup is the other user.import line)
    out["audit"] = [e for e in site.json("GET", "/api/v1/audit?limit=50")["json"]
                    if e["action"] == "user.import" and e["actor"] == settings["a_admin"]]
    t = time.time()
    r = site.json("GET", "/api/v1/users?q=bulk0999&limit=50")
    out["search_seconds"] = time.time() - t
    out["search_total"] = r["json"]["total"]
    return out


# ---- Reports ----------------------------------------------------------------------------------

def reports(settings):
    import time
    host, port = "127.0.0.1", settings["port"]
    site = Client(host, port, token=settings["site_token"])
    boss = Client(host, port, token=settings["a_admin_token"])
    out = {}
    deadline = time.time() + 30
    while time.time() < deadline:
        r = site.json("GET", "/api/v1/reports")
        if r["status"] == 200 and r["json"]["totals"]["delivered"] >= 1 and r["json"]["totals"]["deferred"] >= 2:
            break
        time.sleep(0.3)
    out["site"] = r["json"]
    out["site_status"] = r["status"]
    out["boss"] = boss.json("GET", "/api/v1/reports")["json"]
    out["boss_a"] = boss.json("GET", "/api/v1/reports?domain=a.example&bucket=day")["json"]
    out["boss_b"] = boss.json("GET", "/api/v1/reports?domain=b.example")["status"]
    out["csv"] = site.request("GET", "/api/v1/reports?format=csv")["body"].splitlines()[:2]
    chart = site.request("GET", "/api/v1/reports/chart.svg")
    out["chart"] = {"status": chart["status"], "type": chart["content_type"], "body": chart["body"]}
    out["bad_range"] = site.json("GET", "/api/v1/reports?from=10&to=5")["status"]
    return out


# ---- Status ------------------------------------------------------------------------------------

def status(settings):
    """The node's status as the site administrator reads it, once the master reports
    settings['expect_generation'] (a reload is seen within a heartbeat)."""
    import time
    site = Client("127.0.0.1", settings["port"], token=settings["site_token"])
    boss = Client("127.0.0.1", settings["port"], token=settings["a_admin_token"])
    deadline = time.time() + 30
    while True:
        r = site.json("GET", "/api/v1/status")
        generation = ((r["json"] or {}).get("master") or {}).get("status", {}).get("generation")
        if generation == settings["expect_generation"] or time.time() > deadline:
            break
        time.sleep(0.3)
    return {"status": r["status"], "json": r["json"], "boss": boss.json("GET", "/api/v1/status")["status"]}


def reload(settings):
    """The console's reload button: POST /api/v1/reload as the site administrator (the worker
    asks its master, which answers when the new generation serves), and as A's administrator."""
    site = Client("127.0.0.1", settings["port"], token=settings["site_token"])
    boss = Client("127.0.0.1", settings["port"], token=settings["a_admin_token"])
    r = site.json("POST", "/api/v1/reload")
    return {"status": r["status"], "json": r["json"], "boss": boss.json("POST", "/api/v1/reload")["status"],
            "audit": [e["action"] for e in site.json("GET", "/api/v1/audit?limit=5")["json"]]}


# ---- Security ----------------------------------------------------------------------------------

def security(settings):
    host, port = "127.0.0.1", settings["port"]
    out = {}
    # CSRF: a console session's changes need its X-CSRF-Token.
    c = Client(host, port)
    login = c.login(settings["a_admin"], settings["a_admin_password"])
    out["login_status"] = login["status"]
    out["cookie_flags"] = login["set_cookie"]
    csrf, c.csrf = c.csrf, None
    out["csrf_missing"] = c.json("POST", "/api/v1/users", {"name": "csrf1@a.example", "password": "Pass-word-123"})["status"]
    out["csrf_wrong"] = c.request("POST", "/api/v1/users", {"name": "csrf2@a.example", "password": "Pass-word-123"},
                                  headers={"X-CSRF-Token": "not-the-token"})["status"]
    # What a form on another site can send: no custom header, a form body.
    out["csrf_form"] = c.request("POST", "/api/v1/users", raw=b"name=csrf3%40a.example&password=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"})["status"]
    c.csrf = csrf
    out["csrf_right"] = c.json("POST", "/api/v1/users", {"name": "csrf4@a.example", "password": "Pass-word-123"})["status"]
    site = Client(host, port, token=settings["site_token"])
    out["csrf_created"] = [u["name"] for u in site.json("GET", "/api/v1/users?q=csrf")["json"]["items"]]
    # Session fixation: a token the browser brought is never adopted.
    f = Client(host, port)
    f.cookie = "attacker-chosen-token"
    r = f.login(settings["a_admin"], settings["a_admin_password"])
    out["fixation_new_cookie_differs"] = f.cookie is not None and f.cookie != "attacker-chosen-token"
    planted = Client(host, port)
    planted.cookie = "attacker-chosen-token"
    out["fixation_planted_status"] = planted.json("GET", "/api/v1/me")["status"]
    out["before_logout"] = f.json("GET", "/api/v1/me")["status"]
    out["logout"] = f.json("DELETE", "/api/v1/session")["status"]
    out["after_logout"] = f.json("GET", "/api/v1/me")["status"]
    # Brute force from one address (127.0.0.2): refused after max_login_failures, even with the
    # right password; another address still gets in.
    attacker = Client(host, port, source="127.0.0.2")
    statuses = [attacker.json("POST", "/api/v1/session", {"user": settings["brute"], "password": "guess-%d" % i})["status"]
                for i in range(settings["max_failures"] + 2)]
    out["brute_force_statuses"] = statuses
    out["brute_force_right_password"] = attacker.json("POST", "/api/v1/session", {"user": settings["brute"], "password": settings["brute_password"]})["status"]
    out["other_address"] = Client(host, port, source="127.0.0.3").json("POST", "/api/v1/session", {"user": settings["brute"], "password": settings["brute_password"]})["status"]
    # An account attacked from many addresses is locked (per-account limit), the others are not.
    for i in range(settings["max_failures_per_account"]):
        Client(host, port, source="127.0.1.%d" % (i + 1)).json("POST", "/api/v1/session", {"user": settings["victim"], "password": "guess"})
    out["victim_locked"] = Client(host, port, source="127.0.2.1").json("POST", "/api/v1/session", {"user": settings["victim"], "password": settings["victim_password"]})["status"]
    # Plain HTTP off loopback: refused, login included; the same address over TLS works.
    lan = Client(settings["lan_address"], settings["lan_plain_port"])
    r = lan.json("POST", "/api/v1/session", {"user": settings["a_admin"], "password": settings["a_admin_password"]})
    out["lan_plain_login"] = {"status": r["status"], "error": (r["json"] or {}).get("error"), "set_cookie": r["set_cookie"]}
    out["lan_plain_page"] = lan.request("GET", "/")["status"]
    tls = Client(settings["lan_address"], settings["lan_tls_port"], tls=True)
    r = tls.login(settings["a_admin"], settings["a_admin_password"])
    out["lan_tls_login"] = r["status"]
    out["lan_tls_me"] = tls.json("GET", "/api/v1/me")["status"]
    # Rate limit (that listener allows request_burst at once): a burst is cut off with 429.
    out["rate_limited"] = [tls.request("GET", "/api/v1/me")["status"] for _ in range(settings["lan_burst"] + 5)]
    # Malformed bodies get a 400 with a reason, never a 500.
    token = Client(host, port, token=settings["site_token"])
    out["malformed"] = [token.request("POST", "/api/v1/users", raw=raw, headers={"Content-Type": "application/json"})["status"]
                        for raw in [b"{", b"[]", b"\xff\xfe", b'{"name": 5, "password": "x"}', b'{"name": "x@a.example", "password": "p", "quotaBytes": -1}',
                                    b'{"name": "x@a.example", "password": "p", "quotaBytes": true}', b'{"name": "no-at-sign", "password": "Pass-word-1"}']]
    # Found by schemathesis: a number that is no Int (the worker trapped converting it).
    out["malformed"] += [token.request("POST", "/api/v1/queue/bulk", raw=raw, headers={"Content-Type": "application/json"})["status"]
                         for raw in [b'{"action": "hold", "filter": {"minAge": -1e21}}', b'{"action": "hold", "filter": {"minAge": 1.5}}']]
    out["unknown_path"] = token.request("GET", "/api/v1/nothing-here")["status"]
    return out


if __name__ == "__main__":
    command, settings = sys.argv[1], json.loads(sys.argv[2])
    result = {"setup": setup, "isolation": isolation, "import": bulk_import, "reports": reports, "status": status, "reload": reload, "security": security}[command](settings)
    print(json.dumps(result))
