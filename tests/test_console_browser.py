"""The web console end to end in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

The app runs under uvicorn on a free local port with a small artifact and a SQLite store; the test types
keys and weights into the pages as a person would. Screenshots go to runs/console/ (not in git).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from serving.testing import make_keys, service_config, small_world

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(__file__).resolve().parents[1] / "runs" / "console"

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium/chromedriver missing: bin/services installs them", pytrace=False)
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app under uvicorn in a background thread; yields (base URL, keys)."""
    import uvicorn

    from serving.app import create_app
    from serving.storage.factory import open_store

    tmp = tmp_path_factory.mktemp("console")
    from training.artifact import write_artifact

    tables = small_world(n_sellers=6, groups_per_seller=3, n_products=30, candidates_per_group=20)
    # A last evaluation window: the cut-off's candidates (here today's) and an order for every third pair of them.
    cands = tables["candidates"]
    ordered = cands.iloc[::3]
    tables["evaluation_candidates"] = cands
    tables["evaluation_window"] = ordered[["group_id", "product_id"]].assign(
        orders=1, quantity=1.0, paid=ordered["price"].to_numpy(), commission=ordered["commission_yuan"].to_numpy())
    write_artifact(tmp / "artifacts", tables, {"config_hash": "test", "pick_date": "2025-07-01"})
    config = service_config(tmp)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    app = create_app(config, store=store, watch=False)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", keys
    srv.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture()
def browser():
    """A fresh headless Chromium with its own profile folder."""
    profile = tempfile.mkdtemp(prefix="qx-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1400", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, seconds: float = 20) -> WebDriverWait:
    # The pages re-render their tables on every answer, so an element found a moment ago may be gone.
    return WebDriverWait(driver, seconds, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])


def _shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _enter_key(driver, key: str) -> None:
    field = driver.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.ID, "save-key").click()


def test_ops_page_preview_apply_and_audit(server, browser):
    base, keys = server
    browser.get(base + "/console/ops")
    assert "运营权重" in browser.title
    _enter_key(browser, keys["ops"])
    _wait(browser).until(EC.presence_of_element_located((By.ID, "new-seller_earnings")))
    _wait(browser).until(lambda d: d.find_element(By.ID, "n-earnings").get_attribute("value") == "1")
    before = browser.find_element(By.ID, "new-seller_earnings").text
    assert browser.find_element(By.ID, "cur-seller_earnings").text == before  # proposal = live weights at first
    # The last evaluation window is replayed beside today's candidates, with realised orders of the picks.
    _wait(browser).until(EC.presence_of_element_located((By.ID, "win-new-realised_commission")))
    assert browser.find_element(By.ID, "win-cur-realised_orders").text == browser.find_element(By.ID, "win-new-realised_orders").text
    assert "评估截点" in browser.find_element(By.ID, "window-note").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#tradeoff circle[data-kind=proposed]")) == 1

    # Turn earnings off: the proposal column must move away from the live one.
    field = browser.find_element(By.ID, "n-earnings")
    field.clear()
    field.send_keys("0")
    _wait(browser).until(lambda d: d.find_element(By.ID, "new-seller_earnings").text != before)
    assert browser.find_element(By.ID, "cur-seller_earnings").text == before
    assert browser.find_element(By.ID, "delta-seller_earnings").get_attribute("class") == "down"
    _shot(browser, "ops_preview")

    # Apply: the audit list gains an entry by this key, naming the change.
    browser.find_element(By.ID, "apply").click()
    _wait(browser).until(lambda d: "已应用" in d.find_element(By.ID, "status").text)
    entry = _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#audit li[data-version='1']"))
    assert "小王" in entry.text and "收益 1 → 0" in entry.text
    # The live column now shows the applied weights.
    _wait(browser).until(lambda d: d.find_element(By.ID, "cur-seller_earnings").text
                         == d.find_element(By.ID, "new-seller_earnings").text)
    _shot(browser, "ops_applied")


def test_brand_page_reach_and_what_if(server, browser):
    base, keys = server
    browser.get(base + "/console/brand?brand=好孩子")
    _enter_key(browser, keys["brand"])
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "fig-orders")))
    assert "覆盖群数" in browser.find_element(By.ID, "figures").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-seller rect")) >= 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#products tbody tr")) == 6  # P0, P5, … P25
    _shot(browser, "brand_reach")

    browser.find_element(By.ID, "wi-commission").send_keys("60")
    browser.find_element(By.ID, "wi-run").click()
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "wi-result")))
    base_commission = browser.find_element(By.ID, "wi-base-commission").text
    new_commission = browser.find_element(By.ID, "wi-new-commission").text
    assert base_commission != new_commission
    _shot(browser, "brand_what_if")


def test_brand_key_cannot_open_another_brand(server, browser):
    base, keys = server
    browser.get(base + "/console/brand?brand=三只松鼠")
    _enter_key(browser, keys["brand"])
    _wait(browser).until(lambda d: "无权查看该品牌" in d.find_element(By.ID, "status").text)
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")
    assert not browser.find_element(By.ID, "report").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#figures .figure") == []
    _shot(browser, "brand_forbidden")
