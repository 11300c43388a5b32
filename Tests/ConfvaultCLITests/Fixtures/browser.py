"""Drives Confvault's web page in a real headless Chromium through WebDriver (Debian's chromium and
chromium-driver, Python's selenium 4), the way a person uses it, and saves a screenshot at each step.

Usage:
  browser.py --base URL --user NAME --password PW --viewer NAME --viewer-password PW
             --upload ARCHIVE --hostile ARCHIVE --screenshots DIR --downloads DIR
             [--app inventory] [--environment development] [--restore-into staging]
             [--expect-key TEXT]... [--expect-refusal TEXT]... [--timeout 120]

Steps: sign in through the form; the colours (computed backgrounds of the legend and the versions);
an upload previewed then cancelled; the upload previewed (key paths) and confirmed, the new version in
the table; the hostile upload refused with its rule; "Download current configuration" into DIR; a
version page, the restore's preview and Confirm, the sync's preview and Cancel; the audit log; sign
out; the viewer sees no upload, restore or sync button, and the server refuses a viewer's upload.

The store behind URL must have versions of all three colours; USER may change ENVIRONMENT and
RESTORE-INTO (and sync), VIEWER is a viewer. ARCHIVE changes ENVIRONMENT's configuration (its
preview must list each --expect-key), HOSTILE is refused (its refusal must contain each
--expect-refusal). Prints one line per step passed and, for the caller to check, lines
`RESULT upload-version=N`, `RESULT restore-version=N` and `RESULT download=PATH`. Exit 0: every
step passed; 1: a step failed (the page source and a failure screenshot are kept); 2: the whole run
took longer than --timeout.
"""
import argparse
import base64
import colorsys
import glob
import gzip
import os
import re
import signal
import sys
import tarfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20  # seconds for any one thing to show up


class Failure(Exception):
    pass


class GlobalTimeout(BaseException):
    """Raised by the alarm: a BaseException, so that no `except Exception` on the way swallows it."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def log(message):
    print(message, flush=True)


class Browser:
    def __init__(self, args):
        self.args = args
        self.base = args.base.rstrip("/")
        self.shots = 0
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,900",
            "--lang=en-GB",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--password-store=basic",
        ]:
            options.add_argument(argument)
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": args.downloads,
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
                "credentials_enable_service": False,
                "profile.password_manager_enabled": False,
            },
        )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.service = Service(CHROMEDRIVER, log_output=os.path.join(args.screenshots, "chromedriver.log"))
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver.set_page_load_timeout(WAIT)
        self.driver.set_script_timeout(WAIT)
        # Headless Chromium takes downloads only when told where to put them.
        try:
            self.driver.execute_cdp_cmd(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": args.downloads, "eventsEnabled": True},
            )
        except WebDriverException:
            self.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": args.downloads})

    # Helpers

    def wait(self, condition, what, timeout=WAIT):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)
        except TimeoutException:
            raise Failure(f"waited {timeout} s for {what}; the page is {self.driver.current_url}") from None

    def open(self, path):
        self.driver.get(self.base + path)

    def one(self, css, within=None):
        found = (within or self.driver).find_elements(By.CSS_SELECTOR, css)
        check(found, f"no `{css}` on {self.driver.current_url}")
        return found[0]

    def all(self, css, within=None):
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def visible(self, css):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), f"`{css}` to show")

    def shot(self, name):
        """A PNG of the whole page, below the fold too (Chromium's DevTools screenshot)."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": max(1, min(size["width"], 1600)),
                "height": max(1, min(size["height"], 6000)), "scale": 1}
        image = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        self.shots += 1
        path = os.path.join(self.args.screenshots, f"{self.shots:02d}-{name}.png")
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(image["data"]))
        log(f"  screenshot {path}")

    def text(self):
        return self.driver.execute_script("return document.body ? document.body.innerText : ''")

    def version_numbers(self):
        """The version numbers in the versions table, as shown (`v12` → 12)."""
        numbers = []
        for link in self.all("table.versions tbody tr td:first-child a"):
            match = re.fullmatch(r"v(\d+)", link.text.strip())
            check(match, f"a version link reads `{link.text}`, not vN")
            numbers.append(int(match.group(1)))
        return numbers

    def head_of(self, environment):
        cell = self.one(f"tr#env-{environment} td:nth-child(2)")
        match = re.fullmatch(r"v(\d+)", cell.text.strip())
        return int(match.group(1)) if match else None

    def console_problems(self):
        """Script errors and Content-Security-Policy refusals the page logged (not failed requests,
        which the refused upload makes on purpose)."""
        problems = []
        try:
            entries = self.driver.get_log("browser")
        except WebDriverException:
            return problems
        for entry in entries:
            message = entry.get("message", "")
            if "Content Security Policy" in message or "Uncaught" in message or (
                entry.get("level") == "SEVERE" and "Failed to load resource" not in message
            ):
                problems.append(message)
        return problems

    # Steps

    def sign_in(self, user, password):
        self.open("/apps/" + self.args.app)
        self.wait(EC.url_to_be(self.base + "/sign-in"), "the redirect to the sign-in page of someone signed out")
        form = self.one('form[action="/sign-in"]')
        self.one('input[name="user"]', form).send_keys(user)
        self.one('input[name="password"]', form).send_keys(password)
        self.shot(f"sign-in-{user}")
        self.one('button[type="submit"]', form).click()
        self.wait(lambda d: d.current_url == self.base + "/" or self.all("main .problem"),
                  f"the apps page after signing in as {user}")
        problems = self.all("main .problem")
        check(not problems, f"signing in as {user} was refused: {problems[0].text if problems else ''}")
        who = self.one("header.top .who").text
        check(user in who, f"the header names `{who}`, not {user}")
        link = self.wait(
            EC.element_to_be_clickable((By.CSS_SELECTOR, f'ul.apps a[href="/apps/{self.args.app}"]')),
            f"the link to app {self.args.app}")
        self.shot(f"apps-{user}")
        link.click()
        self.visible("table.versions")
        log(f"ok: signed in as {user} ({who}) through the form and opened {self.args.app}")

    def colours(self):
        expected = {"current-production": (90, 170), "synced": (30, 70), "not-synced": (190, 250)}
        names = {"current-production": "green", "synced": "yellow", "not-synced": "blue"}
        for status, (low, high) in expected.items():
            legend = self.one(f".legend .status.{status}")
            rows = self.all(f"table.versions tbody a.status.{status}")
            check(rows, f"no version shows as {status}: the store should have one of each colour")
            for element, where in [(legend, "legend"), (rows[0], f"version {rows[0].text}")]:
                colour = element.value_of_css_property("background-color")
                match = re.match(r"rgba?\((\d+), (\d+), (\d+)", colour)
                check(match, f"the {where} {status} background is `{colour}`")
                r, g, b = (int(match.group(i)) / 255 for i in (1, 2, 3))
                hue, _, saturation = colorsys.rgb_to_hls(r, g, b)
                hue *= 360
                check(
                    low <= hue <= high and saturation > 0.3,
                    f"the {where} {status} background {colour} (hue {hue:.0f}°) is not {names[status]}")
                text = element.value_of_css_property("color")
                check(text != colour, f"the {where} {status} text has the colour of its background")
            check(names[status] in legend.find_element(By.XPATH, "..").text, f"the legend does not say {names[status]}")
        production = self.all("table.versions tbody tr.status-current-production")
        check(len(production) == 1, f"{len(production)} rows are the current production version, not 1")
        check(production[0].find_elements(By.CSS_SELECTOR, "td")[-1].text.strip() == "yes",
              "the current production row does not say `yes` under Production")
        self.shot("colours")
        log("ok: the legend and versions show green, yellow and blue (computed background colours)")

    def upload_form(self):
        environment = self.args.environment
        form = self.one(f'tr#env-{environment} form.upload[data-environment="{environment}"]')
        return form, self.one('input[type="file"]', form), self.one('button[type="submit"]', form)

    def send(self, path, what):
        """Chooses `path` in the environment's file input, presses Upload backup and waits for what the
        page then shows: the preview's list of changes, or a problem."""
        environment = self.args.environment
        form, field, button = self.upload_form()
        check(button.text.strip() == "Upload backup", f"the upload button reads `{button.text}`")
        field.send_keys(os.path.abspath(path))
        check(field.get_attribute("value").endswith(os.path.basename(path)), "the file input did not take the file")
        button.click()
        return form, self.wait(
            lambda d: self.all(f"tr#env-{environment} .outcome ul.changes.preview")
            or self.all(f"tr#env-{environment} .outcome .problem"),
            what)[0]

    def upload_cancelled(self):
        environment = self.args.environment
        before = self.version_numbers()
        head = self.head_of(environment)
        _, preview = self.send(self.args.upload, "the upload's preview")
        check("preview" in (preview.get_attribute("class") or ""), f"the upload was refused: {preview.text}")
        outcome = self.one(f"tr#env-{environment} .outcome")
        [b for b in self.all("button", outcome) if b.text.strip() == "Cancel"][0].click()
        self.wait(lambda d: "Cancelled; nothing was changed." in outcome.text, "the upload's Cancel to answer")
        check(not self.all("button.confirm", outcome), "Confirm is still offered after Cancel")
        self.shot("upload-cancelled")
        self.driver.refresh()
        self.visible("table.versions")
        check(self.version_numbers() == before and self.head_of(environment) == head, "Cancel changed the versions")
        log(f"ok: an upload's preview cancelled leaves {environment} at v{head}")

    def upload(self):
        environment = self.args.environment
        before = max(self.version_numbers())
        head = self.head_of(environment)
        form, preview = self.send(self.args.upload, "the upload's preview")
        check("preview" in (preview.get_attribute("class") or ""), f"the upload was refused: {preview.text}")
        outcome = self.one(f"tr#env-{environment} .outcome")
        text = outcome.text
        check(f"v{head}" in text if head else "no version yet" in text,
              f"the preview does not name the head v{head} it is against: {text}")
        check(self.all("li.change", preview), f"the preview lists no changed file: {text}")
        keys = [element.text for element in self.all("ul.keys li", preview)]
        check(keys, f"the preview lists no key path: {text}")
        for wanted in self.args.expect_key:
            check(any(wanted in key for key in keys), f"the preview lacks `{wanted}`; its keys are {keys}")
        confirm = self.one("button.confirm", outcome)
        cancel = [b for b in self.all("button", outcome) if b.text.strip() == "Cancel"]
        check(cancel, "the preview has no Cancel button")
        check(self.one("progress", form).get_attribute("hidden") is not None, "the progress bar stays shown")
        self.shot("upload-preview")
        log(f"ok: the upload's preview lists {len(self.all('li.change', preview))} changed files, keys {keys}")
        confirm.click()
        self.wait(EC.staleness_of(form), "the page to reload after Confirm")
        self.visible("table.versions")
        new = before + 1
        self.wait(lambda d: new in self.version_numbers(), f"v{new} in the versions table")
        check(self.head_of(environment) == new, f"{environment} shows head v{self.head_of(environment)}, not v{new}")
        row = [r for r in self.all("table.versions tbody tr") if r.find_element(By.CSS_SELECTOR, "td").text == f"v{new}"][0]
        cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "td")]
        check(cells[1] == environment and cells[2] == self.args.user, f"the new version's row reads {cells}")
        check("not-synced" in row.get_attribute("class"), "the new version is not blue (never synced)")
        self.shot("upload-applied")
        log(f"ok: Confirm made v{new} in {environment}, shown blue in the versions table")
        log(f"RESULT upload-version={new}")
        return new

    def refused(self):
        environment = self.args.environment
        before = self.version_numbers()
        _, refusal = self.send(self.args.hostile, "the hostile upload's refusal")
        text = refusal.text
        check("refusal" in (refusal.get_attribute("class") or ""), f"the hostile upload was not refused: {text}")
        rule = self.one("strong.rule", refusal).text.strip()
        check(rule, "the refusal names no rule")
        check(rule in text, "the rule is not shown")
        for wanted in self.args.expect_refusal:
            check(wanted in text, f"the refusal lacks `{wanted}`: {text}")
        check(not self.all(f"tr#env-{environment} .outcome button.confirm"), "a refusal offers Confirm")
        colour = refusal.value_of_css_property("color")
        check(colour.startswith("rgb(207, 34, 46") or colour.startswith("rgba(207, 34, 46"),
              f"the refusal is not red but {colour}")
        self.shot("upload-refused")
        self.driver.refresh()
        self.visible("table.versions")
        check(self.version_numbers() == before, "the refused upload changed the versions")
        log(f"ok: the hostile upload is refused, rule `{rule}`: {' '.join(text.split())}")

    def download(self, expected_version):
        environment = self.args.environment
        before = set(os.listdir(self.args.downloads))
        links = [a for a in self.all(f"tr#env-{environment} a.button")
                 if a.text.strip() == "Download current configuration"]
        check(links, f"no `Download current configuration` for {environment}")
        links[0].click()

        def finished(_):
            names = [n for n in set(os.listdir(self.args.downloads)) - before
                     if not n.endswith(".crdownload") and not n.startswith(".")]
            partial = [n for n in os.listdir(self.args.downloads) if n.endswith(".crdownload")]
            return names if names and not partial else False

        names = self.wait(finished, f"the download in {self.args.downloads}")
        check(len(names) == 1, f"the download made {names}")
        path = os.path.join(self.args.downloads, names[0])
        wanted = f"{self.args.app}-{environment}-v{expected_version}.tar.gz"
        check(names[0] == wanted, f"the download is named {names[0]}, not {wanted}")
        with open(path, "rb") as handle:
            check(handle.read(2) == b"\x1f\x8b", f"{path} is not gzip")
        with tarfile.open(path, "r:gz") as archive:
            members = archive.getnames()
        check(members and members[0] == "confvault.json", f"the download's first entry is {members[:1]}")
        check(any(m.startswith("config/") for m in members), "the download holds no config/ entry")
        check(self.driver.current_url == f"{self.base}/apps/{self.args.app}", "the download left the page")
        self.shot("downloaded")
        log(f"ok: downloaded {names[0]} ({os.path.getsize(path)} bytes, {len(members)} entries) through the page")
        log(f"RESULT download={path}")

    def restore(self, number):
        target = self.args.restore_into
        self.one(f'table.versions a[href="/apps/{self.args.app}/versions/{number}"]').click()
        self.wait(EC.url_to_be(f"{self.base}/apps/{self.args.app}/versions/{number}"), f"the page of v{number}")
        heading = self.visible("h1").text
        check(f"v{number}" in heading, f"the version page is headed `{heading}`")
        check(self.all("ul.changes li.change"), f"the page of v{number} shows no change")
        check([a for a in self.all("a.button") if a.text.strip() == "Download"], "the version page has no Download")
        check(self.all('form[action$="/sync/preview"] button'), "a releaser sees no sync button")
        self.shot(f"version-{number}")
        form = self.one('form[action$="/restore/preview"]')
        Select(self.one('select[name="environment"]', form)).select_by_value(target)
        self.one('button[type="submit"]', form).click()
        self.wait(EC.url_to_be(f"{self.base}/apps/{self.args.app}/versions/{number}/restore/preview"),
                  "the restore's preview page")
        heading = self.visible("h1").text
        check(heading == f"Restore v{number} to {target}", f"the preview is headed `{heading}`")
        confirm = self.one('form[action$="/restore"] button.confirm')
        check([a for a in self.all("form a") if a.text.strip() == "Cancel"], "the preview has no Cancel")
        check(self.all("ul.changes li.change"), "the restore's preview lists no change")
        self.shot("restore-preview")
        log(f"ok: the restore of v{number} to {target} shows a preview with Confirm and Cancel")
        confirm.click()
        self.wait(EC.url_to_be(f"{self.base}/apps/{self.args.app}"), "the app page after the restore")
        self.visible("table.versions")
        head = self.head_of(target)
        check(head is not None and head > number, f"{target}'s head is v{head} after the restore")
        self.shot("restored")
        log(f"ok: Confirm restored v{number} into {target} as v{head}")
        log(f"RESULT restore-version={head}")
        # The sync's preview, cancelled: production stays as it was, with its colours.
        self.one(f'table.versions a[href="/apps/{self.args.app}/versions/{head}"]').click()
        self.wait(EC.url_to_be(f"{self.base}/apps/{self.args.app}/versions/{head}"), f"the page of v{head}")
        self.one('form[action$="/sync/preview"] button').click()
        self.wait(EC.url_to_be(f"{self.base}/apps/{self.args.app}/versions/{head}/sync/preview"),
                  "the sync's preview page")
        heading = self.visible("h1").text
        check(heading.startswith(f"Sync v{head} to "), f"the sync preview is headed `{heading}`")
        self.one('form[action$="/sync"] button.confirm')
        self.shot("sync-preview")
        [a for a in self.all("form a") if a.text.strip() == "Cancel"][0].click()
        self.wait(EC.url_to_be(f"{self.base}/apps/{self.args.app}/versions/{head}"), "Cancel back to the version")
        log(f"ok: the sync of v{head} shows a preview with Confirm; Cancel leads back to v{head}")

    def audit(self, number):
        self.open(f"/apps/{self.args.app}/audit")
        self.visible("table.audit")
        rows = [r.text for r in self.all("table.audit tbody tr")]
        check(any(f"v{number}" in row and self.args.user in row for row in rows),
              f"the audit log has no entry of v{number} by {self.args.user}")
        self.shot("audit")
        log(f"ok: the audit log lists v{number} by {self.args.user} ({len(rows)} entries)")

    def sign_out(self):
        self.open(f"/apps/{self.args.app}")
        self.one('header.top form[action="/sign-out"] button').click()
        self.wait(EC.url_to_be(self.base + "/sign-in"), "the sign-in page after signing out")
        check(not self.all("header.top .who"), "still signed in after signing out")
        self.open(f"/apps/{self.args.app}")
        self.wait(EC.url_to_be(self.base + "/sign-in"), "the redirect to sign in after signing out")
        log("ok: signed out")

    def viewer(self, number):
        environment = self.args.environment
        check(not self.all("form.upload"), "a viewer sees an upload form")
        check(not self.all('input[type="file"]'), "a viewer sees a file input")
        buttons = [b.text for b in self.all("button")]
        check("Upload backup" not in buttons, f"a viewer sees an Upload backup button: {buttons}")
        check("your role cannot change" in self.one(f"tr#env-{environment}").text,
              "the viewer is not told why there is no upload")
        check([a for a in self.all(f"tr#env-{environment} a.button")
               if a.text.strip() == "Download current configuration"], "a viewer cannot download")
        self.shot("viewer-app")
        status = self.driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            const token = document.querySelector('meta[name="csrf-token"]').content;
            fetch(arguments[0], {method: "POST", body: new Blob(["x"]), headers: {"X-CSRF-Token": token,
              "Content-Type": "application/octet-stream"}}).then(r => done(r.status), e => done(String(e)));""",
            f"/api/v1/apps/{self.args.app}/environments/{environment}/uploads")
        check(status == 403, f"the server answered {status}, not 403, to a viewer's upload")
        self.one(f'table.versions a[href="/apps/{self.args.app}/versions/{number}"]').click()
        self.wait(EC.url_to_be(f"{self.base}/apps/{self.args.app}/versions/{number}"), f"the page of v{number}")
        self.visible("h1")
        check(not self.all('form[action*="/restore"]'), "a viewer sees a restore form")
        check(not self.all('form[action*="/sync"]'), "a viewer sees a sync form")
        buttons = [b.text for b in self.all("main button")]
        check(not buttons, f"a viewer sees buttons on a version page: {buttons}")
        check([a for a in self.all("a.button") if a.text.strip() == "Download"], "a viewer cannot download a version")
        self.shot("viewer-version")
        log(f"ok: the viewer sees no upload, restore or sync button (app page, v{number}); "
            "the server refuses a viewer's upload with 403")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ["--base", "--user", "--password", "--viewer", "--viewer-password", "--upload", "--hostile",
                 "--screenshots", "--downloads"]:
        parser.add_argument(name, required=True)
    parser.add_argument("--app", default="inventory")
    parser.add_argument("--environment", default="development")
    parser.add_argument("--restore-into", default="staging")
    parser.add_argument("--expect-key", action="append", default=[])
    parser.add_argument("--expect-refusal", action="append", default=[])
    parser.add_argument("--timeout", type=int, default=120)
    args = parser.parse_args()
    for folder in (args.screenshots, args.downloads):
        os.makedirs(folder, exist_ok=True)
    for old in glob.glob(os.path.join(args.screenshots, "*.png")) + glob.glob(os.path.join(args.screenshots, "*.html")):
        os.remove(old)
    args.screenshots = os.path.abspath(args.screenshots)
    args.downloads = os.path.abspath(args.downloads)

    def expired(signum, frame):
        raise GlobalTimeout()

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(args.timeout)
    started = time.monotonic()
    browser = None
    status = 1
    try:
        browser = Browser(args)
        log(f"ok: {browser.driver.capabilities.get('browserName')} "
            f"{browser.driver.capabilities.get('browserVersion')} headless, WebDriver at {CHROMEDRIVER}")
        browser.sign_in(args.user, args.password)
        browser.colours()
        browser.upload_cancelled()
        number = browser.upload()
        browser.refused()
        browser.download(number)
        browser.restore(number)
        browser.audit(number)
        browser.sign_out()
        browser.sign_in(args.viewer, args.viewer_password)
        browser.viewer(number)
        problems = browser.console_problems()
        check(not problems, "the page logged script or CSP errors:\n" + "\n".join(problems))
        status = 0
        log(f"PASS in {time.monotonic() - started:.1f} s; screenshots in {args.screenshots}")
    except GlobalTimeout:
        status = 2
        log(f"FAIL: the run took longer than {args.timeout} s")
    except WebDriverException as error:
        log(f"FAIL: {type(error).__name__}: {error.msg}")
        traceback.print_tb(error.__traceback__, file=sys.stdout)
    except (Failure, OSError, tarfile.TarError, gzip.BadGzipFile) as error:
        log(f"FAIL: {type(error).__name__}: {error}")
        if not isinstance(error, Failure):
            traceback.print_exc(file=sys.stdout)
    finally:
        signal.alarm(20)  # quitting may hang too
        try:
            if browser is not None and status != 0:
                try:
                    log(f"the page was {browser.driver.current_url}:")
                    log(browser.text()[:3000])
                    browser.driver.save_screenshot(os.path.join(args.screenshots, "failure.png"))
                    with open(os.path.join(args.screenshots, "failure.html"), "w") as handle:
                        handle.write(browser.driver.page_source)
                    for problem in browser.console_problems():
                        log(f"console: {problem}")
                except WebDriverException as error:
                    log(f"(could not keep the failed page: {error.msg})")
                except OSError as error:
                    log(f"(could not keep the failed page: {error})")
            if browser is not None:
                browser.driver.quit()
        except (GlobalTimeout, WebDriverException):
            if browser is not None and browser.service.process:
                browser.service.process.kill()
        finally:
            signal.alarm(0)
    return status


if __name__ == "__main__":
    sys.exit(main())
