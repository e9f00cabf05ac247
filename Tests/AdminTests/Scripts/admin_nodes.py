#!/usr/bin/python3
"""Drives one Postern console and its nodes (AdminNodesTests) and prints one JSON object of
observations. Nothing here decides pass or fail: it records what the console, the nodes' node API
(through curl, with and without certificates) and a browser saw.

    admin_nodes.py up SETTINGS_JSON       # mail through every node, then the console's view of them
    admin_nodes.py down SETTINGS_JSON     # after one node was stopped: how long until the console
                                          # shows it down, the reports without it, a call to it
"""
import json, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from admin_api import Client  # noqa: E402


def send(port, user, password, subject):
    import smtplib
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = user, "far@remote.example", subject
    m.set_content("Waiting in a node's queue.\n")
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.login(user, password)
        s.send_message(m)


def clients(settings):
    site = Client("127.0.0.1", settings["port"])
    r = site.login(settings["site"], settings["password"])
    if r["status"] != 201:
        raise SystemExit("site login: %s" % r)
    boss = Client("127.0.0.1", settings["port"])
    r = boss.login(settings["boss"], settings["password"])
    if r["status"] != 201:
        raise SystemExit("boss login: %s" % r)
    return site, boss


def wait_for(what, probe, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit("gave up waiting for " + what)


def curl(settings, port, cert=None, principal=None, path="/api/v1/status"):
    """The node API through curl: the site's CA checks the node; `cert` is the client's."""
    args = ["curl", "-sS", "--max-time", "10", "--cacert", settings["ca"], "-o", "-", "-w", "\n%{http_code}"]
    if cert:
        args += ["--cert", settings["certs"][cert] + ".pem", "--key", settings["certs"][cert] + ".key"]
    if principal:
        args += ["-H", "X-Postern-Principal: " + principal]
    p = subprocess.run(args + ["https://127.0.0.1:%d%s" % (port, path)], capture_output=True, text=True)
    body, _, code = p.stdout.rpartition("\n")
    return {"exit": p.returncode, "http": int(code) if code.isdigit() else 0, "body": body[:100000], "stderr": p.stderr[:400]}


def up(settings):
    out = {}
    # Mail through every node: alice (a.example) on each, bob (b.example) on node2 too.
    for node, port in settings["submission"].items():
        send(port, settings["alice"], settings["password"], "from alice via " + node)
    send(settings["submission"]["node2"], settings["bob"], settings["password"], "from bob via node2")
    site, boss = clients(settings)

    def all_up():
        r = site.json("GET", "/api/v1/nodes")["json"]["items"]
        return r if all(n.get("up") for n in r) and len(r) == 3 else None
    out["nodes"] = wait_for("every node up", all_up)
    out["boss_nodes"] = boss.json("GET", "/api/v1/nodes")["json"]["items"]

    def queued(node, count):
        def probe():
            items = site.json("GET", "/api/v1/queue?node=" + node)["json"]["items"]
            return items if len(items) >= count else None
        return probe
    for node, count in [("node1", 1), ("node2", 2), ("node3", 1)]:
        wait_for("the queue of " + node, queued(node, count))

    out["report"] = site.json("GET", "/api/v1/reports")["json"]
    out["report_node2"] = site.json("GET", "/api/v1/reports?node=node2")["json"]
    out["boss_report"] = boss.json("GET", "/api/v1/reports")["json"]
    out["site_queue_node2"] = site.json("GET", "/api/v1/queue?node=node2")["json"]["items"]
    boss_queue = boss.json("GET", "/api/v1/queue?node=node2")
    out["boss_queue_node2"] = boss_queue["json"]["items"]
    bob_id = [m["id"] for m in out["site_queue_node2"] if m["sender"] == settings["bob"]][0]
    alice_id = [m["id"] for m in out["site_queue_node2"] if m["sender"] == settings["alice"]][0]
    out["boss_bob_message"] = boss.json("GET", "/api/v1/queue/%s?node=node2" % bob_id)
    out["boss_ghost_message"] = boss.json("GET", "/api/v1/queue/%s?node=node2" % ("0" * len(bob_id)))
    out["boss_hold"] = boss.json("POST", "/api/v1/queue/%s/hold?node=node2" % alice_id)
    out["node2_after_hold"] = site.json("GET", "/api/v1/queue/%s?node=node2" % alice_id)["json"]
    out["node2_audit"] = site.json("GET", "/api/v1/audit?node=node2")["json"]
    out["console_queue"] = site.json("GET", "/api/v1/queue")["json"]["items"]
    out["unknown_node"] = site.json("GET", "/api/v1/queue?node=nosuch")
    out["node2_status"] = site.json("GET", "/api/v1/status?node=node2")["json"]

    # The node API itself, as other clients would call it.
    node2 = settings["node_api"]["node2"]
    site_principal = settings["site_principal"]
    out["curl_no_certificate"] = curl(settings, node2)
    out["curl_node_certificate"] = curl(settings, node2, cert="rogue", principal=site_principal)
    out["curl_console_no_principal"] = curl(settings, node2, cert="console")
    out["curl_console"] = curl(settings, node2, cert="console", principal=site_principal)
    return out


def down(settings):
    out = {}
    site, boss = clients(settings)
    stopped = settings["stopped_at"]

    def node3_down():
        items = site.json("GET", "/api/v1/nodes")["json"]["items"]
        n = [x for x in items if x["name"] == "node3"][0]
        return n if n.get("up") is False else None
    n = wait_for("node3 shown down", node3_down)
    out["seconds_to_down"] = time.time() - stopped
    out["node3"] = n
    out["report"] = site.json("GET", "/api/v1/reports")["json"]
    started = time.time()
    out["queue_node3"] = site.json("GET", "/api/v1/queue?node=node3")
    out["queue_node3_seconds"] = time.time() - started
    out["queue_node2"] = site.json("GET", "/api/v1/queue?node=node2")["status"]
    out["browser"] = browser(settings)
    return out


def browser(settings):
    """The console's node list and report in headless Chromium, with a screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--lang=en-US", "--no-proxy-server"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    seen = {}
    try:
        wait = WebDriverWait(driver, 20)
        driver.get(settings["base"] + "/")
        wait.until(lambda d: d.find_element(By.ID, "login-user").is_displayed())
        driver.find_element(By.ID, "login-user").send_keys(settings["site"])
        driver.find_element(By.ID, "login-password").send_keys(settings["password"])
        driver.find_element(By.ID, "login-submit").click()
        wait.until(lambda d: d.find_element(By.ID, "top").is_displayed())

        def page(hash_):
            driver.get(settings["base"] + "/" + hash_)
            wait.until(lambda d: d.find_element(By.ID, "page").get_attribute("data-busy") != "1"
                       and d.find_element(By.ID, "page").get_attribute("data-rendered") == hash_)
        page("#/nodes")
        seen["states"] = {row.get_attribute("data-node"): row.find_element(By.CSS_SELECTOR, "[data-state]").get_attribute("data-state")
                          for row in driver.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")}
        shot = os.path.join(settings["screenshots"], "admin-nodes.png")
        driver.save_screenshot(shot)
        seen["screenshot"] = shot
        page("#/reports")
        seen["report_nodes"] = driver.find_element(By.ID, "report-nodes").text
        driver.save_screenshot(os.path.join(settings["screenshots"], "admin-reports-nodes.png"))
    finally:
        driver.quit()
    return seen


if __name__ == "__main__":
    command, settings = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"up": up, "down": down}[command](settings)))
