#!/usr/bin/env python3
"""Writes Core/Resources/openapi.json, the admin API's OpenAPI document: edit the operations here, run
`python3 Plugins/Admin/openapi.py > Plugins/Admin/Core/Resources/openapi.json`, commit both
(AdminPartsTests checks that they agree)."""
import json
P = {}
def ref(n): return {"$ref": "#/components/schemas/" + n}
def page(n): return {"type": "object", "required": ["total", "offset", "items"], "properties": {"total": {"type": "integer"}, "offset": {"type": "integer"}, "items": {"type": "array", "items": ref(n)}}}
def param(name, kind, desc):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "x-postern-identifier": kind, "description": desc}
def q(name, desc, typ="string"):
    return {"name": name, "in": "query", "required": False, "schema": {"type": typ}, "description": desc}
TABLE = [q("offset", "first row of the page", "integer"), q("limit", "rows per page (1 to 10000, default 100)", "integer"), q("format", "csv: the whole table as CSV")]
ERR = {"$ref": "#/components/responses/Refused"}
def op(method, path, summary, access, ok, okschema=None, params=(), body=None, tags=None, csv=False):
    o = {"summary": summary, "x-postern-access": access, "operationId": method + "".join(w.capitalize() for w in path.replace("{", "").replace("}", "").replace(".", "-").split("/")[3:]).replace("-", ""),
         "tags": tags or [path.split("/")[3]]}
    if params: o["parameters"] = list(params)
    if body: o["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    r = {}
    if okschema is None: r[str(ok)] = {"description": "done"}
    else:
        c = {"application/json": {"schema": okschema}}
        if csv: c["text/csv"] = {"schema": {"type": "string"}}
        r[str(ok)] = {"description": "done", "content": c}
    for code in ["400", "401", "403", "404", "409", "429", "503"]: r[code] = ERR
    o["responses"] = r
    if access != "open": o["security"] = [{"session": []}, {"token": []}]
    P.setdefault(path, {})[method] = o

D = param("domain", "domain", "a domain name")
U = param("user", "user", "an account, local@domain")
A = param("address", "alias", "an alias address, or @domain for the domain's catch-all")
M = param("mailbox", "mailbox", "a folder name, / as the hierarchy separator (percent-encoded as %2F)")
I = param("identifier", "acl-identifier", "an account, anyone, or -name for a negative entry")
QID = param("id", "queue-id", "a queue id")
ACT = {"name": "action", "in": "path", "required": True, "schema": {"type": "string", "enum": ["hold", "release", "delete", "flush", "requeue"]}, "x-postern-identifier": "queue-action"}
TID = param("id", "token-id", "a token's public id")

op("post", "/api/v1/session", "Log in (console): sets the session cookie; the answer carries the CSRF token to send as X-CSRF-Token", "open", 201, ref("Me"),
   body={"type": "object", "required": ["user", "password"], "properties": {"user": {"type": "string"}, "password": {"type": "string"}}})
op("delete", "/api/v1/session", "Log out", "anyone", 204, tags=["session"])
op("get", "/api/v1/me", "The caller: account, role, domains, quota", "anyone", 200, ref("Me"))
op("put", "/api/v1/me/password", "Change one's own password", "anyone", 204, body={"type": "object", "required": ["current", "password"], "properties": {"current": {"type": "string"}, "password": {"type": "string"}}})
op("get", "/api/v1/me/forwarding", "One's forwarding", "anyone", 200, ref("Forwarding"))
op("put", "/api/v1/me/forwarding", "Set one's forwarding (an empty list turns it off)", "anyone", 200, ref("Forwarding"), body=ref("Forwarding"))
op("get", "/api/v1/me/vacation", "One's vacation reply", "anyone", 200, ref("Vacation"))
op("put", "/api/v1/me/vacation", "Turn one's vacation reply on", "anyone", 200, ref("Vacation"),
   body={"type": "object", "required": ["subject", "body"], "properties": {"subject": {"type": "string"}, "body": {"type": "string"}, "periodDays": {"type": "integer", "minimum": 1, "maximum": 365}, "start": {"type": "integer"}, "end": {"type": "integer"}}})
op("delete", "/api/v1/me/vacation", "Turn one's vacation reply off", "anyone", 204)
op("get", "/api/v1/tokens", "One's API tokens", "anyone", 200, {"type": "array", "items": ref("Token")})
op("post", "/api/v1/tokens", "Create an API token (its secret is shown once)", "anyone", 201,
   {"type": "object", "required": ["token", "secret"], "properties": {"token": ref("Token"), "secret": {"type": "string"}}},
   body={"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}, "expiresDays": {"type": "integer", "minimum": 1, "maximum": 3650}}})
op("delete", "/api/v1/tokens/{id}", "Revoke one of one's API tokens", "anyone", 204, params=[TID])

op("get", "/api/v1/domains", "Domains the caller administers", "administrators", 200, page("Domain"), params=[q("q", "part of the name")] + TABLE, csv=True)
op("post", "/api/v1/domains", "Add a domain", "site", 201, ref("Domain"), body={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
op("get", "/api/v1/domains/{domain}", "One domain", "administrators", 200, ref("Domain"), params=[D])
op("delete", "/api/v1/domains/{domain}", "Delete a domain (refused while it has accounts, unless ?accounts=delete)", "site", 204, params=[D, q("accounts", "delete: delete its accounts and their mail too")])
op("get", "/api/v1/domains/{domain}/aliases", "A domain's aliases", "administrators", 200, page("Alias"), params=[D] + TABLE, tags=["aliases"], csv=True)
op("get", "/api/v1/aliases/{address}", "One alias", "administrators", 200, ref("Alias"), params=[A])
op("put", "/api/v1/aliases/{address}", "Set an alias or catch-all", "administrators", 200, ref("Alias"), params=[A],
   body={"type": "object", "required": ["targets"], "properties": {"targets": {"type": "array", "items": {"type": "string"}, "minItems": 1}}})
op("delete", "/api/v1/aliases/{address}", "Remove an alias", "administrators", 204, params=[A])

op("get", "/api/v1/users", "Accounts the caller administers, searched and paged", "administrators", 200, page("User"),
   params=[q("domain", "one domain"), q("q", "part of the address"), q("level", "user, domain-admin or site-admin"), q("enabled", "true or false")] + TABLE, csv=True)
op("post", "/api/v1/users", "Create an account (with its standard folders)", "administrators", 201, ref("User"),
   body={"type": "object", "required": ["name", "password"], "properties": {"name": {"type": "string"}, "password": {"type": "string"}, "level": ref("Level"), "quotaBytes": {"type": ["integer", "null"]}, "quotaMessages": {"type": ["integer", "null"]}}})
P.setdefault("/api/v1/users/import", {})["post"] = {
    "summary": "Create accounts in bulk from a CSV or HR export (columns email, password or hash, quota, admin; or a Dovecot passwd-file): every bad row is reported by its line, the others are created; dryRun=true creates nothing",
    "operationId": "postUsersImport", "tags": ["users"], "x-postern-access": "administrators", "security": [{"session": []}, {"token": []}],
    "parameters": [q("dryRun", "true: check every row and create nothing"), q("createDomains", "true (site administrators): create the file's domains that do not exist"),
                   q("background", "true: answer 202 with a job at once (its progress: GET /api/v1/jobs/ID, which holds the report when done)")],
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
    "responses": dict({"200": {"description": "the report", "content": {"application/json": {"schema": ref("ImportReport")}}},
                       "202": {"description": "the import runs in the background", "content": {"application/json": {"schema": ref("Job")}}}},
                      **{c: ERR for c in ["400", "401", "403", "404", "409", "429", "503"]})}
op("get", "/api/v1/jobs/{id}", "A background job of the caller's (a bulk import): its progress, and its report once done", "anyone", 200, ref("Job"),
   params=[param("id", "job-id", "a job id")], tags=["users"])
op("get", "/api/v1/users/{user}", "One account", "administrators", 200, ref("User"), params=[U])
op("patch", "/api/v1/users/{user}", "Change an account: suspend or enable, quota (null: no limit), password, level, delegated domains", "administrators", 200, ref("User"), params=[U],
   body={"type": "object", "properties": {"enabled": {"type": "boolean"}, "password": {"type": "string"}, "level": ref("Level"), "quotaBytes": {"type": ["integer", "null"]}, "quotaMessages": {"type": ["integer", "null"]}, "delegatedDomains": {"type": "array", "items": {"type": "string"}}}})
op("delete", "/api/v1/users/{user}", "Delete an account with all its mail", "administrators", 204, params=[U])
op("get", "/api/v1/users/{user}/mailboxes", "An account's folders", "administrators", 200, page("Mailbox"), params=[U] + TABLE, tags=["mailboxes"], csv=True)
op("post", "/api/v1/users/{user}/mailboxes", "Create a folder (shared once rights let others in)", "administrators", 201, {"type": "object"}, params=[U], tags=["mailboxes"],
   body={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "subscribed": {"type": "boolean", "description": "default true"}}})
op("get", "/api/v1/users/{user}/mailboxes/{mailbox}", "A folder's properties: attributes (special use), counts, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscription", "administrators", 200, ref("Mailbox"), params=[U, M], tags=["mailboxes"])
op("patch", "/api/v1/users/{user}/mailboxes/{mailbox}", "Rename a folder (its messages, rights and subfolders follow) or change the account's subscription to it", "administrators", 200, ref("Mailbox"), params=[U, M], tags=["mailboxes"],
   body={"type": "object", "properties": {"name": {"type": "string", "minLength": 1}, "subscribed": {"type": "boolean"}}})
op("delete", "/api/v1/users/{user}/mailboxes/{mailbox}", "Delete a folder and its messages", "administrators", 204, params=[U, M], tags=["mailboxes"])
op("get", "/api/v1/users/{user}/mailboxes/{mailbox}/acl", "A folder's rights", "administrators", 200, page("ACLEntry"), params=[U, M] + TABLE, tags=["mailboxes"], csv=True)
op("put", "/api/v1/users/{user}/mailboxes/{mailbox}/acl/{identifier}", "Set an identifier's rights on a folder", "administrators", 200, ref("ACLEntry"), params=[U, M, I], tags=["mailboxes"],
   body={"type": "object", "required": ["rights"], "properties": {"rights": {"type": "string", "pattern": "^[lrswipkxteacd]+$"}}})
op("delete", "/api/v1/users/{user}/mailboxes/{mailbox}/acl/{identifier}", "Remove an identifier's rights on a folder", "administrators", 204, params=[U, M, I], tags=["mailboxes"])

QF = [q("sender", "part of the sender"), q("recipient", "part of a pending recipient"), q("domain", "sender's or a recipient's domain"), q("queue", "incoming, active, deferred or hold"), q("reason", "part of the hold reason or last reply"), q("minAge", "seconds since arrival, at least", "integer")]
op("get", "/api/v1/queue", "Queued messages the caller may see, filtered (hold: the quarantine)", "administrators", 200, page("QueueEntry"), params=QF + TABLE, csv=True)
op("get", "/api/v1/queue/{id}", "One queued message with its headers", "administrators", 200,
   {"type": "object", "required": ["entry", "headers"], "properties": {"entry": ref("QueueEntry"), "headers": {"type": "string"}}}, params=[QID])
op("post", "/api/v1/queue/{id}/{action}", "Hold, release, delete (no bounce), flush or requeue one message", "administrators", 200,
   {"type": "object", "properties": {"done": {"type": "integer"}}}, params=[QID, ACT])
op("post", "/api/v1/queue/bulk", "An action on every message a filter matches (among those the caller sees)", "administrators", 200,
   {"type": "object", "properties": {"matched": {"type": "integer"}, "done": {"type": "integer"}}},
   body={"type": "object", "required": ["action", "filter"], "properties": {"action": {"type": "string", "enum": ["hold", "release", "delete", "flush", "requeue"]},
        "filter": {"type": "object", "properties": {k: {"type": "string"} for k in ["sender", "recipient", "domain", "queue", "reason"]} | {"minAge": {"type": "integer"}}}}})
op("get", "/api/v1/audit", "The audit log, newest first (domain administrators: their domains' lines)", "administrators", 200, {"type": "array", "items": ref("AuditEntry")},
   params=[q("before", "an entry id: older entries only", "integer"), q("limit", "1 to 10000, default 100", "integer"), q("format", "csv")], csv=True)
RQ = [q("from", "seconds since 1970 (default: 24 hours before to)", "integer"), q("to", "seconds since 1970 (default: now)", "integer"),
      q("bucket", "hour or day (default: hour up to 3 days)"), q("domain", "only mail from or to this domain")]
op("get", "/api/v1/reports", "Mail received, quarantined, rejected, delivered, deferred and bounced per hour or day, by listener; top senders, recipients and destinations; reasons", "administrators", 200, ref("Report"), params=RQ + [q("format", "csv: the buckets as CSV")], csv=True)
P.setdefault("/api/v1/reports/chart.svg", {})["get"] = {
    "summary": "The report's buckets as an SVG line chart", "operationId": "getReportsChart", "tags": ["reports"], "x-postern-access": "administrators",
    "security": [{"session": []}, {"token": []}], "parameters": RQ,
    "responses": dict({"200": {"description": "the chart", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}},
                      **{c: ERR for c in ["400", "401", "403", "404", "409", "429", "503"]})}
op("get", "/api/v1/status", "This node: the master's status (generations, workers, plugins, listeners, reloads) and heartbeat, domains, accounts, queue sizes", "site", 200, ref("Status"))
op("post", "/api/v1/reload", "Reload this node's config, as postern ctl reload does (409 with the reasons when refused; the running generation keeps serving)", "site", 200,
   {"type": "object", "required": ["ok", "message", "errors"], "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}, "errors": {"type": "array", "items": {"type": "string"}}}}, tags=["status"])
op("get", "/api/v1/alerts", "This node's alerts: those that hold now and their history (format=csv: the history)", "site", 200,
   {"type": "object", "required": ["active", "history", "mailedTo"], "properties": {"checked": {"type": "integer"}, "active": {"type": "array", "items": ref("Alert")},
    "history": {"type": "array", "items": {"type": "object", "required": ["kind", "message", "since"], "properties": {"kind": {"type": "string"}, "message": {"type": "string"}, "since": {"type": "integer"}, "ended": {"type": "integer"}}}},
    "mailedTo": {"type": "array", "items": {"type": "string"}}}}, params=[q("format", "csv: the history as CSV")], tags=["status"], csv=True)
op("get", "/api/v1/nodes", "The console's nodes, this one first, with what their last heartbeat found (domain administrators: names and whether they answer)", "administrators", 200,
   {"type": "object", "required": ["total", "offset", "items"], "properties": {"total": {"type": "integer"}, "offset": {"type": "integer"}, "items": {"type": "array", "items": ref("Node")}}},
   params=TABLE, csv=True)
op("get", "/api/v1/openapi.json", "This document", "open", 200, {"type": "object"}, tags=["meta"])

# Every call but the console's own session, account and node list may go to another node of the
# console: ?node=NAME passes it on to that node's node API as the caller (503 node-down when the
# node does not answer).
NODE = q("node", "another node of this console (GET /api/v1/nodes): the call is answered by that node, for the caller; reports without it sum every node that answers")
for path, methods in P.items():
    if any(path.startswith(p) for p in ["/api/v1/session", "/api/v1/me", "/api/v1/tokens", "/api/v1/nodes", "/api/v1/openapi.json"]): continue
    for o in methods.values():
        o.setdefault("parameters", []).append(NODE)
for path in ["/api/v1/reports", "/api/v1/reports/chart.svg"]:
    P[path]["get"]["parameters"].append(q("top", "entries in each top list (1 to 100, default 10)", "integer"))

S = {
 "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
 "Level": {"type": "string", "enum": ["user", "domain-admin", "site-admin"]},
 "Me": {"type": "object", "required": ["user", "role", "domains", "via", "bytesUsed", "messagesUsed"], "properties": {"user": {"type": "string"}, "role": {"$ref": "#/components/schemas/Level"}, "domains": {"type": "array", "items": {"type": "string"}}, "via": {"type": "string"}, "csrf": {"type": "string"}, "quotaBytes": {"type": "integer"}, "quotaMessages": {"type": "integer"}, "bytesUsed": {"type": "integer"}, "messagesUsed": {"type": "integer"}}},
 "Forwarding": {"type": "object", "properties": {"to": {"type": "array", "items": {"type": "string"}}, "keepCopy": {"type": "boolean"}}},
 "Vacation": {"type": "object", "required": ["subject", "body", "period"], "properties": {"subject": {"type": "string"}, "body": {"type": "string"}, "period": {"type": "number"}, "start": {"type": "integer"}, "end": {"type": "integer"}}},
 "Token": {"type": "object", "required": ["id", "user", "name", "created"], "properties": {"id": {"type": "string"}, "user": {"type": "string"}, "name": {"type": "string"}, "created": {"type": "integer"}, "expires": {"type": "integer"}, "lastUsed": {"type": "integer"}}},
 "Domain": {"type": "object", "required": ["name", "accounts", "aliases"], "properties": {"name": {"type": "string"}, "accounts": {"type": "integer"}, "aliases": {"type": "integer"}, "catchAll": {"type": "array", "items": {"type": "string"}}, "administrators": {"type": "array", "items": {"type": "string"}}}},
 "Alias": {"type": "object", "required": ["address", "targets"], "properties": {"address": {"type": "string"}, "targets": {"type": "array", "items": {"type": "string"}}}},
 "User": {"type": "object", "required": ["name", "enabled", "level", "bytesUsed", "messagesUsed", "created"], "properties": {"name": {"type": "string"}, "enabled": {"type": "boolean"}, "level": {"$ref": "#/components/schemas/Level"}, "quotaBytes": {"type": "integer"}, "quotaMessages": {"type": "integer"}, "bytesUsed": {"type": "integer"}, "messagesUsed": {"type": "integer"}, "created": {"type": "integer"}, "delegatedDomains": {"type": "array", "items": {"type": "string"}}, "forwarding": {"$ref": "#/components/schemas/Forwarding"}, "vacation": {"type": "boolean"}}},
 "ImportReport": {"type": "object", "required": ["dryRun", "imported", "refused", "newDomains"], "properties": {"dryRun": {"type": "boolean"}, "imported": {"type": "integer"}, "newDomains": {"type": "array", "items": {"type": "string"}}, "refused": {"type": "array", "items": {"type": "object", "required": ["line", "reason"], "properties": {"line": {"type": "integer"}, "reason": {"type": "string"}}}}}},
 "Counts": {"type": "object", "required": ["received", "quarantined", "rejected", "delivered", "deferred", "bounced"], "properties": {k: {"type": "integer"} for k in ["received", "quarantined", "rejected", "delivered", "deferred", "bounced"]}},
 "Ranked": {"type": "array", "items": {"type": "object", "required": ["name", "count"], "properties": {"name": {"type": "string"}, "count": {"type": "integer"}}}},
 "Report": {"type": "object", "required": ["from", "to", "bucketSeconds", "totals", "buckets", "listeners", "topSenders", "topRecipients", "topDestinations", "rejectionReasons", "deferralReasons", "bounceReasons", "quarantineReasons"],
            "properties": {"from": {"type": "integer"}, "to": {"type": "integer"}, "bucketSeconds": {"type": "integer"}, "totals": {"$ref": "#/components/schemas/Counts"},
                           "buckets": {"type": "array", "items": {"type": "object", "required": ["start", "counts"], "properties": {"start": {"type": "integer"}, "counts": {"$ref": "#/components/schemas/Counts"}}}},
                           "listeners": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Counts"}},
                           "filters": {"type": "object", "description": "what each filter (by its name in the listeners' filters) rejected and quarantined", "additionalProperties": {"$ref": "#/components/schemas/Counts"}},
                           **{k: {"$ref": "#/components/schemas/Ranked"} for k in ["topSenders", "topRecipients", "topDestinations", "rejectionReasons", "deferralReasons", "bounceReasons", "quarantineReasons"]},
                           "nodes": {"type": "array", "description": "a console's sum over its nodes: whose counts are in it, and why a node's are not",
                                     "items": {"type": "object", "required": ["name", "included"], "properties": {"name": {"type": "string"}, "included": {"type": "boolean"}, "error": {"type": "string"}}}}}},
 "Mailbox": {"type": "object", "required": ["name", "attributes", "messages", "unseen", "uidValidity", "uidNext", "highestModseq", "subscribed"], "properties": {"name": {"type": "string"}, "attributes": {"type": "array", "items": {"type": "string"}}, "messages": {"type": "integer"}, "unseen": {"type": "integer"}, "uidValidity": {"type": "integer"}, "uidNext": {"type": "integer"}, "highestModseq": {"type": "integer"}, "subscribed": {"type": "boolean"}}},
 "ACLEntry": {"type": "object", "required": ["identifier", "rights"], "properties": {"identifier": {"type": "string"}, "rights": {"type": "string"}}},
 "QueueEntry": {"type": "object", "required": ["id", "queue", "sender", "size", "arrival", "attempts", "pending"], "properties": {"id": {"type": "string"}, "queue": {"type": "string"}, "sender": {"type": "string"}, "size": {"type": "integer"}, "arrival": {"type": "integer"}, "attempts": {"type": "integer"}, "nextAttempt": {"type": "integer"}, "holdReason": {"type": "string"}, "pending": {"type": "array", "items": {"type": "object", "required": ["address"], "properties": {"address": {"type": "string"}, "lastReply": {"type": "string"}}}}}},
 "AuditEntry": {"type": "object", "required": ["id", "time", "actor", "role", "action", "target", "client", "detail"], "properties": {"id": {"type": "integer"}, "time": {"type": "integer"}, "actor": {"type": "string"}, "role": {"type": "string"}, "action": {"type": "string"}, "target": {"type": "string"}, "domain": {"type": "string"}, "client": {"type": "string"}, "detail": {"type": "string"}}},
 "Node": {"type": "object", "required": ["name", "local"], "properties": {"name": {"type": "string"}, "local": {"type": "boolean"}, "url": {"type": "string"}, "up": {"type": "boolean"},
          "lastSeen": {"type": "integer"}, "lastCheck": {"type": "integer"}, "error": {"type": "string"}, "status": {"$ref": "#/components/schemas/Status"}}},
 "Status": {"type": "object", "required": ["node", "pid", "listener", "queue", "time", "masterRunning", "alerts"], "properties": {"node": {"type": "string"}, "pid": {"type": "integer"}, "listener": {"type": "string"}, "domains": {"type": "integer"}, "accounts": {"type": "integer"}, "queue": {"type": "object", "additionalProperties": {"type": "integer"}}, "time": {"type": "integer"},
            "master": {"type": "object", "description": "DATA/status.json as the master wrote it: written, interval, status (as `postern ctl status --json`), lastReload"},
            "masterHeartbeatAge": {"type": "number"}, "masterRunning": {"type": "boolean"}, "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}},
 "Job": {"type": "object", "required": ["id", "owner", "kind", "state", "done", "total", "created", "updated"], "properties": {"id": {"type": "string"}, "owner": {"type": "string"}, "kind": {"type": "string"}, "state": {"type": "string", "enum": ["running", "done", "failed"]}, "done": {"type": "integer"}, "total": {"type": "integer"}, "result": {"$ref": "#/components/schemas/ImportReport"}, "error": {"type": "string"}, "created": {"type": "integer"}, "updated": {"type": "integer"}}},
 "Alert": {"type": "object", "required": ["kind", "message", "since"], "properties": {"kind": {"type": "string", "enum": ["queue-size", "deferred-ratio", "worker-restarts", "disk-space", "master-down"]}, "message": {"type": "string"}, "since": {"type": "integer"}}},
}
doc = {"openapi": "3.1.0",
       "info": {"title": "Postern administration API", "version": "1.0.0",
                "description": "Domains, accounts, aliases, folders and rights, the mail queue and the audit log of a Postern node. Site administrators see everything; a domain administrator sees their domains only, and anything outside them is answered exactly as what does not exist (404 with the same words). x-postern-access says who may call an operation; x-postern-identifier names the kind of each path identifier (the isolation test substitutes them)."},
       "servers": [{"url": "/"}],
       "paths": P,
       "components": {"schemas": S, "responses": {"Refused": {"description": "refused; the body says why", "content": {"application/json": {"schema": ref("Error")}}}}, "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "postern_admin", "description": "from POST /api/v1/session; changes also need the X-CSRF-Token header"}, "token": {"type": "http", "scheme": "bearer", "description": "from POST /api/v1/tokens"}}}}
print(json.dumps(doc, indent=1, sort_keys=False))
