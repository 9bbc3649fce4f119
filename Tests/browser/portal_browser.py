"""Drives the portal and the admin area in headless Chromium (Selenium), as a tenant and an operator would.

Input (argv[1]): JSON {base, portal_url, api_key, app, fail_url, flaky_url, admin_key, org, screenshots?}. Prints one JSON
line with what it did; exits 0 when every step held, 1 when one failed (the line says which), 3 when Selenium or
Chromium is missing.
"""
import json
import os
import sys
import time
import urllib.request

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
except ImportError as error:
    print(json.dumps({"error": f"missing Selenium ({error}); run: python3 -m pip install selenium"}))
    sys.exit(3)

config = json.load(open(sys.argv[1]))
base = config["base"]
shots = config.get("screenshots")
done = []


def step(name):
    done.append(name)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def eventually(condition, what, seconds=10):
    """Waits for a page to arrive after a click: polls `condition` until it holds."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(what)


def api(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, headers={
        "Authorization": "Bearer " + config["api_key"], "Content-Type": "application/json"})
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(request, data) as response:
        return json.loads(response.read() or b"null")


def shot(driver, name):
    if shots:
        os.makedirs(shots, exist_ok=True)
        height = driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
        width = driver.get_window_size()["width"]
        driver.set_window_size(width, min(height + 40, 2400))
        driver.save_screenshot(os.path.join(shots, name + ".png"))
        driver.set_window_size(width, 900)


def main():
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(argument)
    for binary in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
        if os.path.exists(binary):
            options.binary_location = binary
            break
    driver_path = next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.path.exists(p)), None)
    if driver_path is None:
        print(json.dumps({"error": "chromedriver is missing; run: apt-get install chromium chromium-driver"}))
        sys.exit(3)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(5)
    result = {}
    try:
        # The magic link lands on the tenant's endpoints.
        driver.get(config["portal_url"])
        check(driver.current_url.endswith("/portal/endpoints"), "the portal link lands on /portal/endpoints: " + driver.current_url)
        step("opened the portal session")

        # Add an endpoint through the form, keyboard first: the URL field is labelled and focusable.
        driver.find_element(By.LINK_TEXT, "Add endpoint").click()
        eventually(lambda: driver.current_url.endswith("/portal/endpoints/new"), "the add form is at /portal/endpoints/new")
        url_field = driver.find_element(By.CSS_SELECTOR, "input[name=url]")
        check(driver.find_element(By.CSS_SELECTOR, "label[for=url]").text.startswith("Endpoint URL"), "the URL field has a label")
        url_field.send_keys("not a url")
        driver.find_element(By.CSS_SELECTOR, "input[value='order.created']").click()
        driver.find_element(By.CSS_SELECTOR, "button[type=submit].primary").click()
        eventually(lambda: "Please correct the form" in driver.page_source, "an invalid URL re-renders the form with a message")
        driver.find_element(By.CSS_SELECTOR, "input[name=url]").clear()
        driver.find_element(By.CSS_SELECTOR, "input[name=url]").send_keys(config["fail_url"])
        driver.find_element(By.CSS_SELECTOR, "input[name=name]").send_keys("Orders")
        shot(driver, "portal-add-endpoint")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit].primary").click()
        eventually(lambda: driver.find_element(By.ID, "secret"), "the secret page arrives")
        secret = driver.find_element(By.ID, "secret").get_attribute("value")
        check(secret.startswith("whsec_"), "the secret is shown after creation")
        check(driver.find_element(By.CSS_SELECTOR, "button.copy").is_displayed(), "a copy button is offered")
        shot(driver, "portal-secret-once")
        step("added an endpoint and saw its secret once")

        driver.find_element(By.LINK_TEXT, "Go to the endpoint").click()
        eventually(lambda: "/portal/endpoints/ep_" in driver.current_url, "the endpoint page arrives")
        endpoint_url = driver.current_url
        result["endpoint_id"] = endpoint_url.rstrip("/").rsplit("/", 1)[-1]
        check(secret not in driver.page_source, "the secret is not shown again")
        driver.find_element(By.XPATH, "//button[normalize-space()='Pause']").click()
        eventually(lambda: driver.find_element(By.CSS_SELECTOR, ".title-row .badge").text == "paused", "the endpoint is paused")
        step("paused it")
        driver.find_element(By.XPATH, "//button[normalize-space()='Resume']").click()
        eventually(lambda: driver.find_element(By.CSS_SELECTOR, ".title-row .badge").text == "active", "the endpoint is active again")
        step("resumed it")

        # A failed delivery: the receiver answers 500 and the schedule has no retries.
        message = api("POST", f"/v1/applications/{config['app']}/events",
                      {"event_type": "order.created", "tenant_id": config["tenant"], "payload": {"order_id": 1001, "note": "<b>bold</b>"}})
        delivery = None
        for _ in range(200):
            deliveries = api("GET", f"/v1/applications/{config['app']}/deliveries?message_id={message['id']}")["data"]
            if deliveries and deliveries[0]["status"] == "exhausted":
                delivery = deliveries[0]
                break
            time.sleep(0.05)
        check(delivery is not None, "the delivery failed into the dead-letter queue")
        result["delivery_id"] = delivery["id"]

        driver.get(endpoint_url)
        shot(driver, "portal-endpoint")
        driver.find_element(By.LINK_TEXT, "Deliveries").click()
        Select(driver.find_element(By.ID, "status")).select_by_value("exhausted")
        driver.find_element(By.XPATH, "//button[normalize-space()='Filter']").click()
        eventually(lambda: "status=exhausted" in driver.current_url, "the status filter is a plain GET form")
        shot(driver, "portal-deliveries")
        driver.find_element(By.LINK_TEXT, "order.created").click()
        eventually(lambda: "/portal/deliveries/" + delivery["id"] in driver.current_url, "the delivery's page opened")
        attempt = driver.find_element(By.CSS_SELECTOR, "section.attempt")
        check("500" in attempt.text, "the attempt shows the 500 answer")
        check("&lt;b&gt;" in driver.page_source or "<b>bold</b>" not in driver.page_source.replace("&lt;b&gt;bold&lt;/b&gt;", ""),
              "the payload is escaped")
        shot(driver, "portal-attempt-detail")
        step("opened the failed delivery's attempt detail")
        driver.find_element(By.XPATH, "//button[normalize-space()='Replay now']").click()
        eventually(lambda: "sent again" in driver.find_element(By.CSS_SELECTOR, ".flash").text, "the replay is confirmed")
        step("replayed it")

        # A broken endpoint: the breaker (made strict once the replay above is recorded) disables it at its first
        # failure. Its page charts the failure, carries a banner with the reason, and one button brings it back.
        eventually(lambda: api("GET", f"/v1/applications/{config['app']}/deliveries/{delivery['id']}")["attempt_count"] == 2,
                   "the replay's attempt is recorded")
        api("PATCH", f"/v1/applications/{config['app']}", {"circuit_breaker": {"failure_threshold": 1}})
        broken = api("POST", f"/v1/applications/{config['app']}/endpoints",
                     {"tenant_id": config["tenant"], "url": config["flaky_url"], "name": "Billing", "events": ["order.shipped"]})
        api("POST", f"/v1/applications/{config['app']}/events",
            {"event_type": "order.shipped", "tenant_id": config["tenant"], "payload": {"order_id": 1001}})
        eventually(lambda: api("GET", f"/v1/applications/{config['app']}/endpoints/{broken['id']}")["status"] == "disabled",
                   "the breaker disabled the endpoint")
        driver.get(base + "/portal/endpoints/" + broken["id"])
        banner = driver.find_element(By.CSS_SELECTOR, ".banner-bad")
        check("disabled" in banner.text and "too many failed attempts in a row" in banner.text and "HTTP 500" in banner.text,
              "the banner gives the reason and the last error: " + banner.text)
        charts = driver.find_elements(By.CSS_SELECTOR, "svg[role=img]")
        check(len(charts) == 2 and all(chart.get_attribute("aria-label") for chart in charts), "two charts with text alternatives")
        shot(driver, "portal-endpoint-health")
        banner.find_element(By.XPATH, ".//button[normalize-space()='Re-enable and resend what failed']").click()
        eventually(lambda: driver.find_element(By.CSS_SELECTOR, ".title-row .badge").text == "active", "the endpoint is active again")
        eventually(lambda: api("GET", f"/v1/applications/{config['app']}/deliveries?endpoint_id={broken['id']}")["data"][0]["status"]
                   == "delivered", "what failed was sent again and delivered")
        check(not driver.find_elements(By.CSS_SELECTOR, ".banner-bad"), "no banner once the endpoint is back")
        result["reenabled_endpoint_id"] = broken["id"]
        step("re-enabled a broken endpoint from its banner")

        # A filter, written in the endpoint's form and tried on the event type's example in the test card.
        driver.get(endpoint_url)
        filter_field = driver.find_element(By.ID, "filter")
        filter_field.clear()
        filter_field.send_keys('{"payload.order_id": {"$gte": 1000}}')
        driver.find_element(By.XPATH, "//button[normalize-space()='Save changes']").click()
        eventually(lambda: api("GET", f"/v1/applications/{config['app']}/endpoints/{result['endpoint_id']}")["filter"]
                   == {"payload.order_id": {"$gte": 1000}}, "the filter is saved")
        Select(driver.find_element(By.ID, "test-event-type")).select_by_value("order.created")
        driver.find_element(By.ID, "test-payload").clear()
        driver.find_element(By.XPATH, "//section[@id='filter-test']//button[normalize-space()='Test']").click()
        eventually(lambda: "Matches" in driver.find_element(By.CSS_SELECTOR, ".filter-result").text, "the example matches the filter")
        shot(driver, "portal-endpoint-filter")
        pasted = driver.find_element(By.ID, "test-payload")
        pasted.clear()
        pasted.send_keys('{"order_id": 7}')
        driver.find_element(By.XPATH, "//section[@id='filter-test']//button[normalize-space()='Test']").click()
        eventually(lambda: "Does not match: payload.order_id is 7" in driver.find_element(By.CSS_SELECTOR, ".filter-result").text,
                   "a pasted payload that does not match says why")
        step("wrote a filter and tested it on the example and on a pasted payload")

        driver.get(base + "/portal/events")
        check("order.created" in driver.page_source, "the event catalog lists the types")
        shot(driver, "portal-event-catalog")
        driver.set_window_size(375, 800)
        driver.get(base + "/portal/endpoints")
        overflow = driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth + 1")
        check(not overflow, "the endpoints page fits a 375-px-wide phone")
        shot(driver, "portal-endpoints-phone")
        driver.set_window_size(1200, 900)
        driver.get(base + "/portal/endpoints")
        shot(driver, "portal-endpoints")
        step("read the catalog and the phone layout")

        # The admin area: sign in with the admin key and move the organization to another plan.
        driver.get(base + "/admin")
        check(driver.current_url.endswith("/admin/login"), "the admin area asks to sign in")
        shot(driver, "admin-sign-in")
        key_field = driver.find_element(By.ID, "key")
        key_field.send_keys(config["admin_key"])
        key_field.send_keys(Keys.ENTER)
        eventually(lambda: driver.current_url.rstrip("/").endswith("/admin"), "signed in")
        shot(driver, "admin-organizations")
        driver.find_element(By.CSS_SELECTOR, f"a[href='/admin/organizations/{config['org']}']").click()
        eventually(lambda: driver.find_element(By.ID, "plan"), "the organization page arrives")
        Select(driver.find_element(By.ID, "plan")).select_by_value("starter")
        driver.find_element(By.XPATH, "//button[normalize-space()='Change plan']").click()
        eventually(lambda: "The plan was changed." in driver.page_source, "the plan change is confirmed")
        check(Select(driver.find_element(By.ID, "plan")).first_selected_option.get_attribute("value") == "starter", "the plan is starter")
        shot(driver, "admin-organization")
        driver.get(base + "/admin/plans")
        shot(driver, "admin-plans")
        step("changed the organization's plan in the admin area")
        result.update({"ok": True, "steps": done})
        print(json.dumps(result))
    except Exception as error:
        print(json.dumps({"ok": False, "steps": done, "failed": f"{type(error).__name__}: {error}", "url": driver.current_url}))
        sys.exit(1)
    finally:
        driver.quit()


main()
