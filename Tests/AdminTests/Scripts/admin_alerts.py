#!/usr/bin/python3
"""Drives a node whose alert thresholds are low (AdminAlertsTests) and prints one JSON object of
observations: mail that waits and defers, the alerts the console then shows, and the alert
ending once the queue is emptied. Nothing here decides pass or fail.

    admin_alerts.py SETTINGS_JSON
"""
import json, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from admin_api import Client  # noqa: E402
from admin_nodes import send, wait_for  # noqa: E402


def main(settings):
    out = {}
    site = Client("127.0.0.1", settings["port"])
    r = site.login(settings["site"], settings["password"])
    if r["status"] != 201:
        raise SystemExit("login: %s" % r)
    for i in range(2):
        send(settings["submission_port"], settings["alice"], settings["password"], "waiting %d" % i)

    last = {}

    def firing():
        a = site.json("GET", "/api/v1/alerts")["json"]
        last["alerts"] = a
        kinds = {x["kind"] for x in a["active"]}
        return a if set(settings["expect"]) <= kinds else None
    try:
        out["firing"] = wait_for("the alerts", firing)
    except SystemExit as e:
        raise SystemExit("%s; the last answer: %s; the queue: %s" % (e, json.dumps(last.get("alerts")),
                                                                      json.dumps(site.json("GET", "/api/v1/queue")["json"])))
    out["status"] = site.json("GET", "/api/v1/status")["json"]
    boss = Client("127.0.0.1", settings["port"])
    boss.login(settings["boss"], settings["password"])
    out["domain_admin"] = boss.json("GET", "/api/v1/alerts")["status"]
    # Empty the queue: the queue alert ends.
    out["bulk"] = site.json("POST", "/api/v1/queue/bulk", {"action": "delete", "filter": {"sender": settings["alice"]}})["json"]

    def ended():
        a = site.json("GET", "/api/v1/alerts")["json"]
        return a if "queue-size" not in {x["kind"] for x in a["active"]} else None
    out["after"] = wait_for("the queue alert to end", ended)
    out["csv"] = site.request("GET", "/api/v1/alerts?format=csv")["body"].splitlines()[:1]
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
