#!/usr/bin/python3
"""Drives Postern's admin console in headless Chromium through WebDriver (Debian's chromium,
chromium-driver and python3-selenium) and prints one JSON object of observations for
AdminBrowserTests to assert on. Nothing here decides pass or fail: it records what the browser
saw after each store task and queue action, and writes screenshots.

    admin_browser.py SETTINGS_JSON
"""
import json, os, sys, time


def queue_mail(settings):
    """Three messages from domain A's user to a remote address, waiting in the deferred queue
    (the relayhost refuses): their ids in arrival order."""
    import smtplib
    from email.message import EmailMessage
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from admin_api import Client
    for i in range(3):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = settings["a_user"], "far@remote.example", "Queued message %d" % i
        m.set_content("Waiting.\n")
        with smtplib.SMTP("127.0.0.1", settings["submission_port"]) as s:
            s.login(settings["a_user"], settings["a_user_password"])
            s.send_message(m)
    site = Client("127.0.0.1", settings["port"])
    site.login(settings["site"], settings["site_password"])
    deadline = time.time() + 30
    while time.time() < deadline:
        items = site.json("GET", "/api/v1/queue?queue=deferred")["json"]["items"]
        if len(items) == 3:
            return [m["id"] for m in items]
        time.sleep(0.2)
    raise SystemExit("the three messages did not reach the deferred queue")


def main(settings):
    settings["queue_ids"] = queue_mail(settings)
    settings["queue_sender"] = settings["a_user"]
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base = settings["base"]
    out = {"checks": {}, "screenshots": [], "console_errors": []}
    checks = out["checks"]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--lang=en-US", "--no-proxy-server"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    driver.set_page_load_timeout(60)
    # The console re-renders a page after each change: an element found a moment ago may be gone.
    wait = WebDriverWait(driver, 20, ignored_exceptions=[StaleElementReferenceException])

    def settle():
        """Waits until the page the console is rendering is complete (data-busy, console.js)."""
        wait.until(lambda d: d.execute_script(
            "const p = document.getElementById('page'); return p.dataset.busy === '0' && p.dataset.rendered === location.hash"))

    def find(css):
        return wait.until(lambda d: d.find_element(By.CSS_SELECTOR, css))

    def texts(css):
        return wait.until(lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, css)])

    def flash():
        """The last notice, once shown (and hidden again, so that the next one is seen anew)."""
        element = wait.until(lambda d: d.find_element(By.ID, "flash") if d.find_element(By.ID, "flash").is_displayed() else False)
        text = element.text
        driver.execute_script("document.getElementById('flash').hidden = true")
        settle()
        return text

    def go(hash_, ready):
        driver.get(base + "/" + hash_)
        settle()
        return find(ready)

    def fill(form, values):
        f = find("#" + form)
        for name, value in values.items():
            field = f.find_element(By.NAME, name)
            if field.tag_name == "select":
                Select(field).select_by_value(value)
            else:
                field.clear()
                field.send_keys(value)
        f.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def accept_confirm():
        wait.until(lambda d: _alert(d))
        driver.switch_to.alert.accept()

    def _alert(d):
        try:
            d.switch_to.alert
            return True
        except NoAlertPresentException:
            return False

    def row(table, attribute, value):
        return find("#%s tr[%s='%s']" % (table, attribute, value))

    def rows_with(table, attribute):
        for _ in range(20):
            try:
                return [e.get_attribute(attribute) for e in driver.find_elements(By.CSS_SELECTOR, "#%s tr[%s]" % (table, attribute))]
            except StaleElementReferenceException:
                time.sleep(0.1)
        raise TimeoutException("the table %s kept changing" % table)

    def shot(name):
        for width in (1280, 390):
            driver.set_window_size(width, 900)
            time.sleep(0.2)
            path = os.path.join(settings["screenshots"], "admin-%s-%d.png" % (name, width))
            driver.save_screenshot(path)
            out["screenshots"].append(path)
        driver.set_window_size(1280, 900)

    try:
        # Login: a wrong password says so; the right one shows the console.
        driver.get(base + "/")
        find("#login-user").send_keys(settings["site"])
        find("#login-password").send_keys("wrong-password")
        find("#login-submit").click()
        checks["bad_login_error"] = wait.until(lambda d: d.find_element(By.ID, "login-error").text or False)
        shot("login")
        find("#login-password").clear()
        find("#login-password").send_keys(settings["site_password"])
        find("#login-submit").click()
        checks["who"] = wait.until(lambda d: d.find_element(By.ID, "who").text or False)
        find("#users")
        checks["landing"] = driver.execute_script("return location.hash")

        # Domains: add one, see it listed.
        go("#/domains", "#domains")
        fill("add-domain", {"name": "c.example"})
        checks["domain_added_flash"] = flash()
        row("domains", "data-domain", "c.example")
        checks["domains"] = rows_with("domains", "data-domain")
        shot("domains")

        # Aliases and the catch-all of the new domain.
        go("#/domain/c.example", "#aliases")
        fill("add-alias", {"address": "info", "targets": "someone@a.example, other@remote.example"})
        flash()
        row("aliases", "data-alias", "info@c.example")
        fill("add-alias", {"address": "@c.example", "targets": "someone@a.example"})
        flash()
        row("aliases", "data-alias", "@c.example")
        checks["aliases"] = rows_with("aliases", "data-alias")
        checks["alias_targets"] = wait.until(lambda d: row("aliases", "data-alias", "info@c.example").find_elements(By.TAG_NAME, "td")[1].text)
        row("aliases", "data-alias", "info@c.example").find_element(By.CSS_SELECTOR, "[data-action=delete-alias]").click()
        flash()
        wait.until(lambda d: "info@c.example" not in rows_with("aliases", "data-alias"))
        checks["aliases_after_remove"] = rows_with("aliases", "data-alias")

        # Accounts: create with a quota, find by search.
        go("#/users", "#users")
        fill("add-user", {"name": "carol@c.example", "password": "Carol-Secret-1", "level": "user", "quota": "50"})
        checks["user_created_flash"] = flash()
        go("#/users?q=carol", "#users")
        wait.until(lambda d: rows_with("users", "data-user") == ["carol@c.example"])
        checks["search_carol"] = rows_with("users", "data-user")
        shot("users")

        # The account's page: suspend, enable, quota, password, level, a folder and its rights.
        go("#/user/carol%40c.example", "#mailboxes")
        checks["quota_shown"] = find("#page p").text
        find("#toggle-enabled").click()
        checks["suspend_flash"] = flash()
        wait.until(lambda d: d.find_element(By.ID, "user-state").text == "suspended")
        checks["state_after_suspend"] = find("#user-state").text
        find("#toggle-enabled").click()
        flash()
        wait.until(lambda d: d.find_element(By.ID, "user-state").text == "active")
        checks["state_after_enable"] = find("#user-state").text
        fill("set-quota", {"bytes": "2000000", "messages": "500"})
        checks["quota_flash"] = flash()
        fill("set-password", {"password": "Carol-Changed-2"})
        checks["password_flash"] = flash()
        fill("set-level", {"level": "domain-admin"})
        checks["level_flash"] = flash()
        find("#set-delegated")
        fill("set-delegated", {"domains": "a.example"})
        checks["delegated_flash"] = flash()
        fill("add-mailbox", {"name": "Shared"})
        flash()
        row("mailboxes", "data-mailbox", "Shared")
        checks["mailboxes"] = rows_with("mailboxes", "data-mailbox")
        shot("user")
        go("#/acl/carol%40c.example/Shared", "#acl")
        fill("set-acl", {"identifier": "anyone", "rights": "lrs"})
        flash()
        checks["acl_rights"] = wait.until(lambda d: row("acl", "data-identifier", "anyone").find_elements(By.TAG_NAME, "td")[1].text)
        row("acl", "data-identifier", "anyone").find_element(By.TAG_NAME, "button").click()
        flash()
        wait.until(lambda d: "anyone" not in rows_with("acl", "data-identifier"))
        checks["acl_after_remove"] = rows_with("acl", "data-identifier")
        # Folder properties: rename it (a prompt asks the new name), then unsubscribe the account.
        go("#/user/carol%40c.example", "#mailboxes")
        row("mailboxes", "data-mailbox", "Shared").find_element(By.CSS_SELECTOR, "[data-rename]").click()
        wait.until(lambda d: _alert(d))
        driver.switch_to.alert.send_keys("Team")
        driver.switch_to.alert.accept()
        checks["rename_flash"] = flash()
        wait.until(lambda d: "Team" in rows_with("mailboxes", "data-mailbox"))
        checks["mailboxes_after_rename"] = rows_with("mailboxes", "data-mailbox")
        box = row("mailboxes", "data-mailbox", "Team").find_element(By.CSS_SELECTOR, "[data-subscribe]")
        checks["team_subscribed_before"] = box.is_selected()
        box.click()
        checks["unsubscribe_flash"] = flash()
        wait.until(lambda d: not row("mailboxes", "data-mailbox", "Team").find_element(By.CSS_SELECTOR, "[data-subscribe]").is_selected())
        checks["team_subscribed_after"] = row("mailboxes", "data-mailbox", "Team").find_element(By.CSS_SELECTOR, "[data-subscribe]").is_selected()

        # Bulk creation from a file: the dry run lists the bad rows by line, the import shows its
        # progress and the same report.
        import tempfile
        rows = ["email,password,quota"] + ["imported%04d@imported.example,Pass-word-%d,10M" % (i, i) for i in range(1200)]
        rows[300] = "not-an-address,Pass-word-1,"
        rows[700] = "carol@c.example,Pass-word-1,"
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("\r\n".join(rows) + "\r\n")
        go("#/users", "#import-link").click()
        settle()
        find("#import-file").send_keys(f.name)
        find("#import-form [name=createDomains]").click()
        find("#import-check").click()
        checks["import_dry_run"] = wait.until(lambda d: d.find_element(By.ID, "import-summary").text)
        checks["import_dry_run_lines"] = rows_with("import-refused", "data-line")
        driver.execute_script("""
            window.importStatuses = [];
            new MutationObserver(() => window.importStatuses.push(document.getElementById('import-status').textContent))
              .observe(document.getElementById('import-status'), { childList: true, characterData: true, subtree: true });""")
        find("#import-run").click()
        wait.until(lambda d: d.find_element(By.ID, "import-status").text.startswith("Imported"))
        checks["import_summary"] = find("#import-summary").text
        checks["import_lines"] = rows_with("import-refused", "data-line")
        checks["import_statuses"] = driver.execute_script("return window.importStatuses")
        checks["import_progress_full"] = driver.execute_script(
            "const p = document.getElementById('import-progress'); return !p.hidden && p.value === p.max")
        shot("import")
        os.unlink(f.name)

        # The queue: each action on one message, a message's headers, a bulk action on a filter.
        go("#/queue", "#queue")
        ids = rows_with("queue", "data-queue-id")
        checks["queue_ids"] = ids
        first, second = settings["queue_ids"][0], settings["queue_ids"][1]
        shot("queue")

        def act(qid, action):
            row("queue", "data-queue-id", qid).find_element(By.CSS_SELECTOR, "[data-action=%s]" % action).click()
            text = flash()
            find("#queue")
            return text

        checks["hold_flash"] = act(first, "hold")
        wait.until(lambda d: row("queue", "data-queue-id", first).find_elements(By.TAG_NAME, "td")[1].text == "hold")
        checks["after_hold"] = wait.until(lambda d: row("queue", "data-queue-id", first).find_elements(By.TAG_NAME, "td")[1].text)
        checks["release_flash"] = act(first, "release")
        wait.until(lambda d: row("queue", "data-queue-id", first).find_elements(By.TAG_NAME, "td")[1].text != "hold")
        checks["after_release"] = wait.until(lambda d: row("queue", "data-queue-id", first).find_elements(By.TAG_NAME, "td")[1].text)
        checks["flush_flash"] = act(first, "flush")
        checks["requeue_flash"] = act(first, "requeue")
        go("#/message/" + first, "#headers")
        checks["headers"] = find("#headers").text
        shot("message")
        go("#/queue", "#queue")
        checks["delete_flash"] = act(second, "delete")
        wait.until(lambda d: second not in rows_with("queue", "data-queue-id"))
        checks["after_delete"] = rows_with("queue", "data-queue-id")
        go("#/queue?sender=" + settings["queue_sender"], "#queue")
        fill("queue-bulk", {"action": "hold"})
        checks["bulk_flash"] = flash()
        go("#/queue?queue=hold", "#queue")
        wait.until(lambda d: rows_with("queue", "data-queue-id"))
        checks["held_after_bulk"] = rows_with("queue", "data-queue-id")

        # The audit log shows what was just done.
        go("#/audit", "#audit")
        checks["audit_actions"] = texts("#audit tbody tr td:nth-child(3)")
        shot("audit")
        go("#/reports", "#totals")
        wait.until(lambda d: d.execute_script("const i = document.getElementById('report-chart'); return i.complete && i.naturalWidth > 0"))
        checks["report_received"] = find("#report-totals td[data-count=received]").text
        checks["report_chart_width"] = driver.execute_script("return document.getElementById('report-chart').naturalWidth")
        checks["report_top_sender"] = texts("#top-senders tbody td:first-child")
        shot("reports")
        go("#/status", "#status")
        checks["status_rows"] = texts("#status tbody th")
        checks["master_state"] = find("#master-state").text
        checks["status_plugins"] = texts("#plugins tbody td:first-child")
        find("#reload").click()
        accept_confirm()
        checks["reload_flash"] = flash()
        shot("status")

        # My account: forwarding.
        go("#/me", "#my-forwarding")
        fill("my-forwarding", {"to": "archive@remote.example"})
        checks["forwarding_flash"] = flash()
        shot("me")

        # Deleting the account and its domain.
        go("#/user/carol%40c.example", "#delete-user")
        find("#delete-user").click()
        accept_confirm()
        checks["delete_user_flash"] = flash()
        go("#/domains", "#domains")
        row("domains", "data-domain", "c.example").find_element(By.CSS_SELECTOR, "[data-action=delete-domain]").click()
        accept_confirm()
        checks["delete_domain_flash"] = flash()
        wait.until(lambda d: "c.example" not in rows_with("domains", "data-domain"))
        checks["domains_after_delete"] = rows_with("domains", "data-domain")

        # Log out; a domain administrator sees their domain only and no status page.
        find("#logout").click()
        wait.until(lambda d: d.find_element(By.ID, "login-page").is_displayed())
        checks["top_hidden_after_logout"] = not driver.find_element(By.ID, "top").is_displayed()
        find("#login-user").send_keys(settings["a_admin"])
        find("#login-password").send_keys(settings["a_admin_password"])
        find("#login-submit").click()
        wait.until(lambda d: d.find_element(By.ID, "who").text.startswith(settings["a_admin"]))
        checks["a_admin_who"] = find("#who").text
        checks["a_admin_status_link_hidden"] = not driver.find_element(By.CSS_SELECTOR, "a[href='#/status']").is_displayed()
        go("#/domains", "#domains")
        checks["a_admin_domains"] = rows_with("domains", "data-domain")
        go("#/users", "#users")
        checks["a_admin_users"] = rows_with("users", "data-user")
        go("#/user/bob%40b.example", "#page .error")
        checks["a_admin_other_domain_user"] = find("#page .error").text
        for entry in driver.get_log("browser"):
            # Network answers (the 401s of the wrong password and of the first look for a
            # session) are the flow; script errors and CSP refusals are not.
            if entry["level"] == "SEVERE" and entry.get("source") != "network":
                out["console_errors"].append(entry["message"])
    except (TimeoutException, WebDriverException) as error:
        out["error"] = "%s at %s: %s" % (type(error).__name__, driver.current_url, str(error)[:500])
        try:
            out["page"] = driver.find_element(By.TAG_NAME, "body").text[:2000]
            driver.save_screenshot(os.path.join(settings["screenshots"], "admin-failure.png"))
        except WebDriverException:
            pass
    finally:
        driver.quit()
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
