#!/usr/bin/python3
"""Drives Postern's webmail in headless Chromium through WebDriver (Debian's chromium,
chromium-driver and python3-selenium) and prints one JSON object of observations for
WebmailBrowserTests to assert on. Nothing here decides pass or fail: it records what the
browser saw.

    webmail_browser.py deliver LMTP_PORT USER COUNT KIND [CORPUS]  # KIND: sample, big, hostile
    webmail_browser.py browse  SETTINGS_JSON                 # the browser session
"""
import base64, json, os, signal, smtplib, subprocess, sys, time, urllib.request, urllib.error
from email.message import EmailMessage


def deliver(port, user, count, kind):
    with smtplib.LMTP("127.0.0.1", port) as lmtp:
        if kind == "big":
            for i in range(count):
                m = EmailMessage()
                m["From"] = f"Sender {i % 97} <sender{i % 97}@example.net>"
                m["To"] = user
                m["Subject"] = f"Big folder message {i:05d}"
                m["Date"] = "Sat, 05 Dec 2026 10:%02d:%02d +0000" % ((i // 60) % 60, i % 60)
                m.set_content(f"Message number {i}.\n")
                lmtp.send_message(m)
        elif kind == "hostile":
            corpus = sys.argv[6]
            for name in sorted(os.listdir(corpus)):
                if not name.endswith(".html"):
                    continue
                data = open(os.path.join(corpus, name), "rb").read()
                raw = (f"From: attacker@example.net\r\nTo: {user}\r\nSubject: hostile {name}\r\n"
                       "Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode()
                raw += base64.encodebytes(data).replace(b"\n", b"\r\n")
                lmtp.sendmail("attacker@example.net", [user], raw)
        else:
            plain = EmailMessage()
            plain["From"] = "Bob Example <bob@example.org>"
            plain["To"] = user
            plain["Subject"] = "Plain hello"
            plain["Date"] = "Sat, 05 Dec 2026 09:00:00 +0000"
            plain["Message-ID"] = "<plain-1@example.net>"
            plain.set_content("Hello Alice,\n\n> an old quote\nSee https://example.com/page for details.\n")
            lmtp.send_message(plain)
            html = EmailMessage()
            html["From"] = "=?utf-8?q?J=C3=B6rg?= <jorg@example.de>"
            html["Reply-To"] = "bob@example.org"
            html["To"] = user
            html["Cc"] = "carol@example.org"
            html["Subject"] = "=?utf-8?q?HTML_Gr=C3=BC=C3=9Fe?="
            html["Date"] = "Sat, 05 Dec 2026 09:30:00 +0000"
            html.set_content("plain alternative")
            html.add_alternative('<p id="greeting">Hi <b>there</b></p><img src="http://remote.example/track.png" alt="tracker">'
                                 '<img src="cid:logo1"><script>alert("x")</script>', subtype="html")
            png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082")
            html.get_payload()[1].add_related(png, maintype="image", subtype="png", cid="<logo1>")
            # One envelope recipient: the Cc is for show (smtplib reads one reply after DATA,
            # LMTP gives one per recipient).
            lmtp.send_message(html, to_addrs=[user])
            att = EmailMessage()
            att["From"] = "Carol <carol@example.net>"
            att["To"] = user
            att["Subject"] = "Report attached"
            att["Date"] = "Sat, 05 Dec 2026 10:00:00 +0000"
            att.set_content("The report is attached.")
            att.add_attachment(b"%PDF-1.4 report bytes", maintype="application", subtype="pdf", filename="Bericht für Q4.pdf")
            lmtp.send_message(att)


def browse(settings):
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base = settings["base"]
    out = {"checks": {}, "timings": {}, "hostile": {}, "screenshots": []}
    checks = out["checks"]

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--lang=en-US", "--no-proxy-server"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    from selenium.webdriver.chrome.service import Service
    service = Service(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)

    def text(selector):
        els = driver.find_elements(By.CSS_SELECTOR, selector)
        return els[0].text if els else None

    def drain_logs():
        driver.get_log("browser")
        driver.get_log("performance")

    def foreign_requests():
        urls = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
                if not url.startswith(base) and not url.startswith("data:"):
                    urls.append(url)
        return urls

    def alert_open():
        try:
            driver.switch_to.alert.dismiss()
            return True
        except NoAlertPresentException:
            return False

    def click(element):
        """Clicks and waits for the next page: a click on a submit button or a link returns
        before the browser has navigated. `element` may be a (By, value) locator, found again
        if the page was still settling when it was first found."""
        for attempt in range(3):
            try:
                target = driver.find_element(*element) if isinstance(element, tuple) else element
                old = driver.find_element(By.TAG_NAME, "html")
                target.click()
                break
            except WebDriverException as error:
                if attempt == 2 or not isinstance(element, tuple):
                    raise
                time.sleep(0.3)
        def replaced(_):
            # The old page's root is gone once the new page is in. Chromium's driver reports a
            # vanished node either as stale or as "does not belong to the document".
            try:
                old.is_enabled()
                return False
            except WebDriverException:
                return True
        WebDriverWait(driver, 30).until(replaced)
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def login(user, password):
        driver.get(base + "/login")
        driver.find_element(By.ID, "user").clear()
        driver.find_element(By.ID, "user").send_keys(user)
        driver.find_element(By.ID, "password").send_keys(password)
        click((By.ID, "login"))

    def cookie_header():
        return "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())

    def http(path, data=None, cookie=True):
        req = urllib.request.Request(base + path, data=data)
        if cookie:
            req.add_header("Cookie", cookie_header())
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def shoot(name, width):
        driver.set_window_size(width, 900)
        path = os.path.join(settings["screenshots"], f"{name}-{width}.png")
        driver.save_screenshot(path)
        out["screenshots"].append(path)

    def imap_messages(account, password, folder="INBOX"):
        """Subjects and parsed messages of an account's folder, through real IMAP."""
        import imaplib, email
        from email import policy
        found = []
        with imaplib.IMAP4("127.0.0.1", settings["imap_port"]) as imap:
            imap.login(account, password)
            imap.select(folder, readonly=True)
            _, data = imap.uid("SEARCH", None, "ALL")
            for uid in data[0].split():
                _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                found.append(email.message_from_bytes(parts[0][1], policy=policy.default))
        return found

    def wait_for(account, password, subject, folder="INBOX", timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in imap_messages(account, password, folder):
                if m["Subject"] == subject:
                    return m
            time.sleep(0.3)
        return None

    def compose_fill(to=None, cc=None, subject=None, body=None):
        for field, value in (("to", to), ("cc", cc), ("subject", subject)):
            if value is not None:
                el = driver.find_element(By.ID, field)
                el.clear()
                el.send_keys(value)
        if body is not None:
            el = driver.find_element(By.ID, "body")
            el.send_keys(Keys.CONTROL, Keys.HOME)
            el.send_keys(body)

    def field(id_):
        return driver.find_element(By.ID, id_).get_attribute("value")

    user, password = settings["user"], settings["password"]
    upload = os.path.join(settings["screenshots"], "..", "upload-notes.txt")
    with open(upload, "w") as f:
        f.write("notes for the meeting\n")
    upload = os.path.abspath(upload)
    try:
        # A wrong password: the form again, with the error, and no session cookie.
        login(user, "wrong-password")
        checks["bad_login_error"] = text("#login-error")
        checks["bad_login_cookie"] = any(c["name"] == "postern_session" for c in driver.get_cookies())

        start = time.time()
        login(user, password)
        out["timings"]["login_to_inbox_ms"] = int((time.time() - start) * 1000)
        checks["after_login_url"] = driver.current_url.replace(base, "")
        checks["inbox_subjects"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#messages td.subject a")]
        checks["inbox_unseen_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#messages tr.unseen"))
        checks["user_shown"] = text("#user")
        checks["brand_org_product"] = text(".topbar .product")
        checks["brand_org_footer"] = text(".footer")
        checks["brand_org_color"] = driver.execute_script("return getComputedStyle(document.querySelector('.topbar')).backgroundColor")
        session = [c for c in driver.get_cookies() if c["name"] == "postern_session"]
        checks["cookie"] = session[0] if session else None
        shoot("inbox", 1280)
        shoot("inbox", 360)
        checks["phone_no_horizontal_scroll"] = driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1")
        driver.set_window_size(1280, 900)

        # Live updates: mail delivered while the folder is open shows a banner (app.js and
        # server-sent events; the page itself works without them).
        driver.get(base + "/mail?f=INBOX")
        time.sleep(1)
        live = EmailMessage()
        live["From"] = "bob@example.org"
        live["To"] = user
        live["Subject"] = "Live arrival"
        live.set_content("arrived while the inbox was open")
        with smtplib.LMTP("127.0.0.1", settings["lmtp_port"]) as lmtp:
            lmtp.send_message(live)
        try:
            WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "new-mail"))
            checks["live_banner"] = text("#new-mail")
        except Exception:
            checks["live_banner"] = None
        checks["live_title"] = driver.title

        # Reading: plain text, then HTML with a remote image, a cid image and a script.
        drain_logs()
        click((By.LINK_TEXT, "Plain hello"))
        checks["plain_subject"] = text("#subject")
        checks["plain_body"] = text("#body")
        checks["plain_link"] = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#body a")]
        driver.get(base + "/mail?f=INBOX")
        click((By.PARTIAL_LINK_TEXT, "HTML Gr"))
        checks["html_subject"] = text("#subject")
        checks["html_from"] = text("#from")
        checks["html_greeting"] = text("#body p")
        checks["html_ids_kept"] = len(driver.find_elements(By.ID, "greeting"))
        checks["html_alert"] = alert_open()
        checks["html_remote_notice"] = text("#remote-images")
        checks["html_foreign_requests_before"] = foreign_requests()
        checks["html_cid_image_loaded"] = driver.execute_script(
            "var i = Array.from(document.querySelectorAll('#body img')).find(function (x) { return x.src.indexOf('/part?') >= 0; });"
            "return i ? (i.complete && i.naturalWidth > 0) : false;")
        shoot("message", 1280)
        shoot("message", 360)
        driver.set_window_size(1280, 900)
        drain_logs()
        click((By.ID, "show-images"))
        time.sleep(0.5)
        checks["html_foreign_requests_after_asking"] = foreign_requests()

        # The attachment: the download link serves the bytes, as an attachment, with its name.
        driver.get(base + "/mail?f=INBOX")
        click((By.LINK_TEXT, "Report attached"))
        link = driver.find_element(By.CSS_SELECTOR, "#attachments a")
        checks["attachment_name"] = link.text
        status, headers, body = http(link.get_attribute("href").replace(base, ""))
        checks["attachment_status"] = status
        checks["attachment_body"] = body.decode("latin-1")
        checks["attachment_disposition"] = headers.get("Content-Disposition")
        checks["attachment_type"] = headers.get("Content-Type")
        status, headers, body = http(driver.find_element(By.ID, "source").get_attribute("href").replace(base, ""))
        checks["source_has_header"] = b"Subject: Report attached" in body
        checks["source_type"] = headers.get("Content-Type")

        # A second sending identity appears as a From choice in compose.
        driver.get(base + "/settings")
        driver.find_element(By.ID, "identity_address").send_keys("sales@example.org")
        driver.find_element(By.ID, "identity_name").send_keys("Alice at Sales")
        click((By.ID, "add-identity"))
        checks["identities_listed"] = text("#identities")
        click((By.ID, "new-message"))
        checks["compose_from_options"] = [o.text for o in driver.find_elements(By.CSS_SELECTOR, "#from option")]
        click((By.ID, "discard"))

        # Compose a new message with an attachment and send it (to bob, a local account).
        driver.get(base + "/mail?f=INBOX")
        click((By.ID, "new-message"))
        compose_fill(to="Bob <bob@example.org>", subject="Webmail sends", body="Hello Bob, from the browser. Grüße")
        driver.find_element(By.ID, "files").send_keys(upload)
        shoot("compose", 1280)
        shoot("compose", 360)
        driver.set_window_size(1280, 900)
        click((By.ID, "send"))
        checks["send_url"] = driver.current_url.replace(base, "")
        checks["send_notice"] = text("#sent-notice")
        checks["send_refused_notice"] = text("#refused-notice")
        checks["clip_icon_loaded"] = driver.execute_script(
            "var i = document.querySelector('#messages img.clip'); return i ? (i.complete && i.naturalWidth > 0) : null;")
        m = wait_for("bob@example.org", settings["bob_password"], "Webmail sends")
        checks["sent_received"] = m is not None
        if m is not None:
            checks["sent_from"] = m["From"]
            checks["sent_body"] = m.get_body(preferencelist=("plain",)).get_content().strip()
            checks["sent_attachments"] = [(a.get_filename(), a.get_content()) for a in m.iter_attachments()]
        sent_copy = [x["Subject"] for x in imap_messages(user, password, "Sent")]
        checks["sent_copy"] = "Webmail sends" in sent_copy

        # Reply: to the sender, quoted, threaded.
        driver.get(base + "/mail?f=INBOX")
        click((By.LINK_TEXT, "Plain hello"))
        click((By.ID, "reply"))
        checks["reply_to"] = field("to")
        checks["reply_subject"] = field("subject")
        checks["reply_quote"] = "> Hello Alice," in driver.find_element(By.ID, "body").get_attribute("value")
        compose_fill(body="Thanks Bob. ")
        click((By.ID, "send"))
        m = wait_for("bob@example.org", settings["bob_password"], "Re: Plain hello")
        checks["reply_in_reply_to"] = m["In-Reply-To"] if m else None
        checks["reply_body_start"] = m.get_body(preferencelist=("plain",)).get_content().splitlines()[0] if m else None
        # The conversation spans folders: the original in the Inbox, the reply in Sent.
        driver.get(base + "/mail?f=INBOX")
        click((By.LINK_TEXT, "Plain hello"))
        click((By.ID, "show-conversation"))
        checks["conversation"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#conversation li a")]
        # Address completion offers the people written to.
        click((By.ID, "new-message"))
        checks["contacts"] = [e.get_attribute("value") for e in driver.find_elements(By.CSS_SELECTOR, "#contacts option")]
        click((By.ID, "discard"))

        # Reply all: the Reply-To and the Cc, without ourselves.
        driver.get(base + "/mail?f=INBOX")
        click((By.PARTIAL_LINK_TEXT, "HTML Gr"))
        click((By.ID, "reply-all"))
        checks["replyall_to"] = field("to")
        checks["replyall_cc"] = field("cc")
        click((By.ID, "discard"))

        # Forward inline (the attachment comes along) and as an attachment.
        driver.get(base + "/mail?f=INBOX")
        click((By.LINK_TEXT, "Report attached"))
        click((By.ID, "forward"))
        checks["forward_subject"] = field("subject")
        checks["forward_uploads"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#uploads .upload-name")]
        compose_fill(to="carol@example.org")
        click((By.ID, "send"))
        m = wait_for("carol@example.org", settings["carol_password"], "Fwd: Report attached")
        checks["forward_attachments"] = [(a.get_filename(), a.get_content_type()) for a in m.iter_attachments()] if m else None
        driver.get(base + "/mail?f=INBOX")
        click((By.LINK_TEXT, "Report attached"))
        click((By.ID, "forward-attach"))
        checks["forward_attach_notice"] = text("#forwarded-original") is not None
        compose_fill(to="carol@example.org", subject="Forwarded whole")
        click((By.ID, "send"))
        m = wait_for("carol@example.org", settings["carol_password"], "Forwarded whole")
        if m is not None:
            inner = [a for a in m.iter_attachments() if a.get_content_type() == "message/rfc822"]
            checks["forward_attach_inner_subject"] = inner[0].get_content()["Subject"] if inner else None

        # A draft: saved with an attachment, resumed from Drafts, then sent.
        click((By.ID, "new-message"))
        compose_fill(to="bob@example.org", subject="Draft to resume", body="first words")
        driver.find_element(By.ID, "files").send_keys(upload)
        click((By.ID, "save-draft"))
        checks["draft_notice"] = text("#compose-notice")
        driver.get(base + "/mail?f=Drafts")
        click((By.LINK_TEXT, "Draft to resume"))
        click((By.ID, "edit-draft"))
        checks["draft_resumed_to"] = field("to")
        checks["draft_resumed_body"] = driver.find_element(By.ID, "body").get_attribute("value").strip()
        checks["draft_resumed_uploads"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#uploads .upload-name")]
        click((By.ID, "send"))
        checks["draft_sent"] = wait_for("bob@example.org", settings["bob_password"], "Draft to resume") is not None
        checks["drafts_after_send"] = [x["Subject"] for x in imap_messages(user, password, "Drafts")]

        # Search, then delete one message to the Trash and move another to the Archive.
        driver.get(base + "/search")
        driver.find_element(By.ID, "q").send_keys("Report")
        click((By.ID, "search"))
        checks["search_results"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#messages td.subject a")]
        driver.get(base + "/mail?f=INBOX")
        row = [r for r in driver.find_elements(By.CSS_SELECTOR, "#messages tbody tr")
               if r.find_element(By.CSS_SELECTOR, "td.subject a").text == "Plain hello"][0]
        row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        click((By.ID, "delete-selected"))
        checks["after_delete_inbox"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#messages td.subject a")]
        checks["trash"] = [x["Subject"] for x in imap_messages(user, password, "Trash")]
        click((By.LINK_TEXT, "Report attached"))
        click((By.ID, "archive"))
        checks["archive"] = [x["Subject"] for x in imap_messages(user, password, "Archive")]

        # CSRF: a post without the token, or with another, is refused and changes nothing.
        status, _, _ = http("/settings", data=b"language=ja")
        checks["settings_without_csrf"] = status
        status, _, _ = http("/settings", data=b"language=ja&csrf=forged")
        checks["settings_forged_csrf"] = status
        status, _, _ = http("/logout", data=b"csrf=forged")
        checks["logout_forged_csrf"] = status
        driver.get(base + "/mail?f=INBOX")
        checks["still_english_after_forgery"] = text("li.use-inbox a") is not None and "Inbox" in text("li.use-inbox a")

        # Language: German chosen in settings shows German.
        driver.get(base + "/settings")
        driver.find_element(By.CSS_SELECTOR, "#language option[value=de]").click()
        click((By.ID, "save"))
        checks["settings_saved_text"] = text("#saved")
        driver.get(base + "/mail?f=INBOX")
        checks["german_inbox"] = text("li.use-inbox a")
        checks["german_html_lang"] = driver.find_element(By.TAG_NAME, "html").get_attribute("lang")

        # A session survives the worker's death (SIGKILL) and a reload, between two requests,
        # with a message being written (text and an uploaded file) intact.
        click((By.ID, "new-message"))
        compose_fill(to="bob@example.org", subject="Survives a crash", body="typed before the crash")
        driver.find_element(By.ID, "files").send_keys(upload)
        click((By.ID, "attach"))
        compose_id = driver.find_element(By.CSS_SELECTOR, "input[name=c]").get_attribute("value")
        def status_json():
            return json.loads(subprocess.run([settings["postern"], "ctl", "status", "-c", settings["config"], "--json"],
                                             capture_output=True, text=True).stdout)["status"]
        before = [w["pid"] for w in status_json()["workers"]]
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                now = [w["pid"] for w in status_json()["workers"] if w.get("state", "ready") == "ready"]
                if now and not set(now) & set(before):
                    break
            except Exception:
                pass
            time.sleep(0.2)
        time.sleep(0.5)
        driver.get(base + "/mail?f=INBOX")
        checks["after_kill_url"] = driver.current_url.replace(base, "")
        checks["after_kill_user"] = text("#user")
        driver.get(base + "/compose?c=" + compose_id)
        checks["after_kill_compose"] = [field("subject"), driver.find_element(By.ID, "body").get_attribute("value").strip(),
                                        [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#uploads .upload-name")]]
        subprocess.run([settings["postern"], "ctl", "reload", "-c", settings["config"]], capture_output=True)
        time.sleep(1.5)
        driver.get(base + "/mail?f=INBOX")
        checks["after_reload_user"] = text("#user")

        # The 10,000-message folder (another account): first page, a later page, timings.
        driver.get(base + "/settings")
        click((By.ID, "logout"))
        login(settings["big_user"], settings["big_password"])
        start = time.time()
        driver.get(base + "/mail?f=INBOX")
        out["timings"]["big_inbox_ms"] = int((time.time() - start) * 1000)
        checks["big_total"] = text("h1.folder-name .total")
        rows = driver.find_elements(By.CSS_SELECTOR, "#messages td.subject a")
        checks["big_first_page_rows"] = len(rows)
        checks["big_first_subject"] = rows[0].text if rows else None
        start = time.time()
        click((By.ID, "next"))
        out["timings"]["big_next_page_ms"] = int((time.time() - start) * 1000)
        rows = driver.find_elements(By.CSS_SELECTOR, "#messages td.subject a")
        checks["big_second_page_first_subject"] = rows[0].text if rows else None
        click((By.ID, "logout"))

        # Another domain's user sees that domain's brand, in its default language.
        login(settings["brand_user"], settings["brand_password"])
        checks["brand_com_product"] = text(".topbar .product")
        checks["brand_com_color"] = driver.execute_script("return getComputedStyle(document.querySelector('.topbar')).backgroundColor")
        checks["brand_com_inbox"] = text("li.use-inbox a")
        click((By.ID, "logout"))

        # The hostile corpus, each message opened in the browser.
        login(settings["hostile_user"], settings["hostile_password"])
        links = []
        page = 0
        while True:
            driver.get(base + f"/mail?f=INBOX&p={page}")
            found = [(a.text, a.get_attribute("href")) for a in driver.find_elements(By.CSS_SELECTOR, "#messages td.subject a")]
            links += found
            if not driver.find_elements(By.ID, "next"):
                break
            page += 1
        for subject, href in links:
            drain_logs()
            driver.get(href)
            alert = alert_open()
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            foreign = foreign_requests()
            out["hostile"][subject] = {"alert": alert, "errors": errors, "foreign": foreign}
        click((By.ID, "logout"))

        # Password change: the old one no longer works, the new one does.
        login(user, password)
        driver.get(base + "/settings")
        driver.find_element(By.ID, "current").send_keys(password)
        driver.find_element(By.ID, "new").send_keys(settings["new_password"])
        driver.find_element(By.ID, "again").send_keys(settings["new_password"])
        click((By.ID, "change-password"))
        checks["password_message"] = text("#account-message")
        driver.get(base + "/mail?f=INBOX")
        checks["password_session_continues"] = text("#user")
        click((By.ID, "logout"))
        login(user, password)
        checks["old_password_error"] = text("#login-error")
        password = settings["new_password"]

        # App passwords: one for IMAP only, made in settings, shown once, usable by an IMAP client
        # and refused by SMTP submission, listed, then revoked.
        login(user, password)
        driver.get(base + "/settings")
        driver.find_element(By.ID, "app_password_name").send_keys("Phone")
        for box in driver.find_elements(By.CSS_SELECTOR, "input[name=scope_pop3], input[name=scope_smtp]"):
            box.click()
        click((By.ID, "create-app-password"))
        app_password = text("#new-app-password code")
        checks["app_password_shape"] = app_password
        checks["app_password_list"] = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.app-passwords tbody tr")]
        import imaplib
        def imap_login(secret):
            try:
                with imaplib.IMAP4("127.0.0.1", settings["imap_port"]) as imap:
                    return imap.login(user, secret)[0]
            except imaplib.IMAP4.error as e:
                return str(e)
        def smtp_auth(secret):
            with smtplib.SMTP("127.0.0.1", settings["submission_port"]) as s:
                s.ehlo("browser-test.example")
                blob = base64.b64encode(("\0" + user + "\0" + secret).encode()).decode()
                return s.docmd("AUTH", "PLAIN " + blob)[0]
        checks["app_password_imap"] = imap_login(app_password)
        checks["app_password_smtp"] = smtp_auth(app_password)
        driver.get(base + "/settings")
        shoot("settings-app-passwords", 1280)
        click((By.CSS_SELECTOR, "button.revoke-app-password"))
        checks["app_password_revoked_message"] = text("#account-message")
        checks["app_password_list_after"] = len(driver.find_elements(By.CSS_SELECTOR, "table.app-passwords tbody tr"))
        checks["app_password_imap_after"] = imap_login(app_password)
        click((By.ID, "logout"))

        # Logout: the cookie is gone and a page asks for the login again.
        login(user, password)
        click((By.ID, "logout"))
        checks["after_logout_url"] = driver.current_url.replace(base, "")
        checks["after_logout_cookie"] = any(c["name"] == "postern_session" for c in driver.get_cookies())
        driver.get(base + "/mail?f=INBOX")
        checks["mail_after_logout_url"] = driver.current_url.replace(base, "")

        # Logout everywhere: a second device (plain HTTP with its own cookie) is logged out too.
        login(user, password)
        other_cookie = None
        status, headers, body = http("/login", cookie=False)
        token = body.decode().split('name="csrf" value="')[1].split('"')[0]
        login_cookie = [v for k, v in headers.items() if k.lower() == "set-cookie"][0].split(";")[0]
        req = urllib.request.Request(base + "/login", data=f"csrf={token}&user={user}&password={password}".encode())
        req.add_header("Cookie", login_cookie)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(req)
        except urllib.error.HTTPError as e:
            other_cookie = [v for k, v in e.headers.items() if k.lower() == "set-cookie" and v.startswith("postern_session")][0].split(";")[0]
        def other_device_status():
            r = urllib.request.Request(base + "/mail?f=INBOX")
            r.add_header("Cookie", other_cookie)
            try:
                opener.open(r)
                return 200
            except urllib.error.HTTPError as e:
                return e.code
        checks["other_device_before"] = other_device_status()
        driver.get(base + "/settings")
        click((By.ID, "logout-everywhere"))
        checks["other_device_after"] = other_device_status()
    finally:
        out["console"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        driver.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "deliver":
        deliver(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        browse(json.loads(sys.argv[2]))
