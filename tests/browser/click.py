"""Drives Debian's Chromium through chromium-driver (WebDriver) for tests/browser.rs.

    click.py SCREENSHOT_DIR URL [URL ...]

Opens the first URL, reads the page, clicks its confirm button, reads the result, reloads it
(posting the form again, as a person who presses F5 and says yes); then for
each further URL (the same link on another instance) opens it and clicks again. Prints one
JSON object per page seen ({"step", "status_text", "heading", "text"}) and saves a screenshot
of each as SCREENSHOT_DIR/<step>.png. Exits non-zero (with the reason on stderr) when a page
has no confirm button.
"""
import json
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


def driver(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=900,700", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def seen(browser, shots, step):
    browser.save_screenshot(f"{shots}/{step}.png")
    page = {
        "step": step,
        "heading": browser.find_element(By.TAG_NAME, "h1").text,
        "text": browser.find_element(By.TAG_NAME, "body").text,
    }
    print(json.dumps(page, ensure_ascii=False), flush=True)


def confirm(browser, shots, url, step):
    browser.get(url)
    seen(browser, shots, f"{step}-confirm")
    buttons = browser.find_elements(By.CSS_SELECTOR, "form button[type=submit]")
    if not buttons:
        sys.exit(f"no confirm button on {url}")
    buttons[0].click()
    seen(browser, shots, f"{step}-result")


def resubmit(browser, shots, step):
    """Reloads the page a confirmation's POST returned: Chromium asks whether to send the form
    again (a user prompt over WebDriver), and the test says yes."""
    browser.refresh()
    try:
        WebDriverWait(browser, 3).until(expected_conditions.alert_is_present())
        browser.switch_to.alert.accept()
    except TimeoutException:
        pass
    seen(browser, shots, step)


def main():
    shots, urls = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory() as profile:
        browser = driver(profile)
        try:
            for i, url in enumerate(urls):
                confirm(browser, shots, url, f"{i + 1}")
                if i == 0:
                    # Reload the result: the form is posted again.
                    resubmit(browser, shots, "1-reload")
            # Back to the first page and confirm once more: already done.
            confirm(browser, shots, urls[0], "again")
        finally:
            browser.quit()


if __name__ == "__main__":
    main()
