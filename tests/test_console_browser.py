"""The web console end to end in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium),
each flow at a desk (1440×900) and on a phone (390×844).

The app runs under uvicorn on a free loopback port with a small artifact (with a last evaluation window and the
evaluation's metrics) and a SQLite store; the tests type keys, weights, reasons and what-ifs into the pages as a
person would. Full-page screenshots go to /tmp/console-shots/ (QX_CONSOLE_SHOTS overrides), named page-size.png.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from serving.testing import make_keys, service_config, small_world

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(os.environ.get("QX_CONSOLE_SHOTS", "/tmp/console-shots"))
SIZES = {"desk": (1440, 900), "phone": (390, 844)}

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium/chromedriver missing: bin/services installs them", pytrace=False)
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

EVALUATION = {
    "ranker": {"ndcg@10": 0.231, "recall@10": 0.184, "hr@10": 0.412, "commission_realised@10": 3.21},
    "ranker_conversion": {"ndcg@10": 0.224, "recall@10": 0.179, "hr@10": 0.405, "commission_realised@10": 2.9},
    "popular": {"ndcg@10": 0.102, "recall@10": 0.088, "hr@10": 0.251, "commission_realised@10": 1.4},
    "own_top": {"ndcg@10": 0.187, "recall@10": 0.151, "hr@10": 0.366, "commission_realised@10": 2.7},
    "random": {"ndcg@10": 0.011, "recall@10": 0.009, "hr@10": 0.04, "commission_realised@10": 0.2},
}


class BigramEmbedder:
    """A small real embedder for the new-product forecast: hashed character bigrams, L2-normalised."""

    dim = 256
    name = "bigram"

    def encode(self, texts):
        """One unit vector per text."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, text in enumerate(texts):
            for a, b in zip(text, text[1:]):
                out[r, (ord(a) * 31 + ord(b)) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """The real app under uvicorn in a background thread; yields (base URL, keys, store)."""
    import uvicorn

    import features.embeddings
    from serving.app import create_app
    from serving.storage.factory import open_store
    from contracts.artifact import write_artifact

    monkeypatch.setattr(features.embeddings, "get_embedder", lambda cfg=None: BigramEmbedder())
    tables = small_world(n_sellers=6, groups_per_seller=3, n_products=30, candidates_per_group=20)
    # A last evaluation window: the cut-off's candidates (here today's) and an order for every third pair of them.
    cands = tables["candidates"]
    ordered = cands.iloc[::3]
    tables["evaluation_candidates"] = cands
    tables["evaluation_window"] = ordered[["group_id", "product_id"]].assign(
        orders=1, quantity=1.0, paid=ordered["price"].to_numpy(), commission=ordered["commission_yuan"].to_numpy())
    manifest = {"config_hash": "test", "pick_date": time.strftime("%Y-%m-%d"),
                "data_window": {"start": "2026-10-01 00:03:00", "end": "2026-11-30 23:58:00"},
                "metrics": {"evaluation": EVALUATION, "ranker": {"auc": 0.781}},
                "counts": {"groups": 18, "cold_groups": 1, "candidates": len(cands)}}
    write_artifact(tmp_path / "artifacts", tables, manifest)
    settings = {"rate_limit_per_minute": 100_000}
    from contracts.config import ServiceSettings

    if "heavy_workers" in ServiceSettings.model_fields:
        settings["heavy_workers"] = 0  # in this process, where the embedder is the test's
    config = service_config(tmp_path, **settings)
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
    yield f"http://127.0.0.1:{port}", keys, store
    srv.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture(params=list(SIZES))
def size(request) -> str:
    """desk or phone."""
    return request.param


@pytest.fixture()
def browser(size):
    """A fresh headless Chromium with its own profile, its viewport set to the size under test."""
    profile = tempfile.mkdtemp(prefix="qx-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    width, height = SIZES[size]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 "--lang=zh-CN", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == "phone"})
    driver.qx_size = size
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    # The pages re-render their tables on every answer, so an element found a moment ago may be gone.
    return WebDriverWait(driver, seconds, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])


def _shot(driver, name: str) -> None:
    """A full-page PNG of the page as it is, and a check that nothing is wider than the viewport."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content = metrics["cssContentSize"]
    width = SIZES[driver.qx_size][0]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": min(int(content["height"]) + 1, 6000), "scale": 1}})
    (SHOTS / f"{name}-{driver.qx_size}.png").write_bytes(base64.b64decode(shot["data"]))
    _assert_fits(driver)


def _assert_fits(driver) -> None:
    """The page is no wider than the viewport (tables scroll inside their cards)."""
    wide = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1] + 1, f"page is {wide[0]} px wide in a {wide[1]} px viewport"


def _enter_key(driver, key: str) -> None:
    field = driver.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.ID, "save-key").click()


def _type(driver, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    if text:
        field.send_keys(text)


def _click(driver, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _api(base: str, method: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _slow_fetch(driver, ms: int) -> None:
    """Delay every fetch by ms and count the calls per path (window.__calls)."""
    driver.execute_script("""
      window.__calls = {};
      const real = window.fetch;
      window.fetch = (path, opts) => {
        const p = String(path).split('?')[0];
        window.__calls[p] = (window.__calls[p] || 0) + 1;
        return new Promise((ok) => setTimeout(ok, arguments[0])).then(() => real(path, opts));
      };""".replace("arguments[0]", str(ms)))


# Ops ---------------------------------------------------------------------------------------------------


def test_ops_weights_apply_with_reason_conflict_and_revert(server, browser):
    base, keys, _ = server
    browser.get(base + "/console/ops")
    assert "运营权重" in browser.title
    # Before a key, no slider pretends to show real weights.
    assert not browser.find_element(By.ID, "workspace").is_displayed()
    _enter_key(browser, keys["ops"])
    _wait(browser).until(lambda d: d.find_element(By.ID, "n-earnings").get_attribute("value") == "1")
    _wait(browser).until(EC.presence_of_element_located((By.ID, "new-seller_earnings")))
    # Every weight has its one-line help, its range and the default marked.
    help_rating = browser.find_element(By.ID, "help-rating").text
    assert "81%" in help_rating and "系统默认 2" in help_rating
    assert "0–10" in browser.find_element(By.ID, "row-rating").text
    assert browser.find_element(By.ID, "def-rating").get_attribute("style").startswith("left: 20%")
    assert browser.find_element(By.ID, "apply").get_attribute("disabled")  # nothing to apply yet
    before = browser.find_element(By.ID, "new-seller_earnings").text
    assert browser.find_element(By.ID, "cur-seller_earnings").text == before
    _wait(browser).until(EC.presence_of_element_located((By.ID, "win-new-realised_commission")))
    # The curve spans the moving weight's whole range, labelled with its real values.
    Select(browser.find_element(By.ID, "curve-weight")).select_by_value("rating")
    _wait(browser).until(lambda d: "10" in [c.get_attribute("data-value") for c in d.find_elements(By.CSS_SELECTOR, "#tradeoff circle[data-value]")])
    Select(browser.find_element(By.ID, "curve-weight")).select_by_value("earnings")
    _wait(browser).until(lambda d: "2.25" in [c.get_attribute("data-value") for c in d.find_elements(By.CSS_SELECTOR, "#tradeoff circle[data-value]")])
    _shot(browser, "ops")

    # Out of range: said in Chinese beside the weight, and nothing can be applied.
    _type(browser, "n-rating", "99")
    _wait(browser).until(lambda d: "不能大于 10" in d.find_element(By.ID, "row-rating").text)
    assert browser.find_element(By.ID, "apply").get_attribute("disabled")
    _type(browser, "n-rating", "2")
    # Turn earnings off and give 宝妈 her own weights.
    _type(browser, "n-earnings", "0")
    _wait(browser).until(lambda d: d.find_element(By.ID, "new-seller_earnings").text != before)
    assert browser.find_element(By.ID, "delta-seller_earnings").get_attribute("class") == "down"
    _click(browser, browser.find_element(By.CSS_SELECTOR, "#profiles button[data-profile='宝妈']"))
    assert browser.find_element(By.ID, "n-diversity").get_attribute("disabled")  # follows the default until ticked
    _click(browser, browser.find_element(By.ID, "override-on"))
    _type(browser, "n-diversity", "2.5")
    _wait(browser).until(lambda d: "宝妈：新设单独权重" in d.find_element(By.ID, "draft-changes").text)

    # Apply asks for a reason, refuses an empty one, and records it.
    _click(browser, browser.find_element(By.ID, "apply"))
    dialog = _wait(browser).until(EC.visibility_of_element_located((By.ID, "reason-dialog")))
    assert "佣金 1 → 0" in dialog.text and "多样 1 → 2.5" in dialog.text
    browser.find_element(By.ID, "reason-ok").click()
    assert "请写下修改原因" in browser.find_element(By.ID, "reason-error").text
    browser.find_element(By.ID, "reason-text").send_keys("学生和宝妈群更看重品类丰富")
    _shot(browser, "ops-apply-dialog")
    browser.find_element(By.ID, "reason-ok").click()
    _wait(browser).until(lambda d: "已应用" in d.find_element(By.ID, "apply-status").text)
    entry = _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#audit li[data-version='1']"))
    assert "小王" in entry.text and "学生和宝妈群更看重品类丰富" in entry.text and "佣金 1 → 0" in entry.text
    assert keys["ops"].split("_")[1] not in entry.text  # no key ids
    assert "第 1 版" in browser.find_element(By.ID, "live-badge").text
    _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#profiles button[data-profile='宝妈'] .dot"))

    # Someone else changes the weights meanwhile: the page's apply is refused as stale, in Chinese.
    status, state = _api(base, "GET", "/v1/ops/weights", keys["ops"])
    other = {**state["weights"], "default": {**state["weights"]["default"], "rating": 4.0}, "version": state["version"],
             "reason": "另一位运营"}
    assert _api(base, "PUT", "/v1/ops/weights", keys["ops"], other)[0] == 200
    _type(browser, "n-conversion", "1.5")
    _wait(browser).until(lambda d: d.find_element(By.ID, "apply").is_enabled())
    _click(browser, browser.find_element(By.ID, "apply"))
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "reason-dialog")))
    browser.find_element(By.ID, "reason-text").send_keys("提高转化")
    browser.find_element(By.ID, "reason-ok").click()
    _wait(browser).until(lambda d: "被别人改过" in d.find_element(By.ID, "apply-status").text)
    assert "error" in browser.find_element(By.ID, "apply-status").get_attribute("class")
    _wait(browser).until(lambda d: "第 2 版" in d.find_element(By.ID, "live-badge").text)
    assert _api(base, "GET", "/v1/ops/weights", keys["ops"])[1]["version"] == 2

    # Revert the first change: asks for a reason, becomes version 3, and names what it undid.
    first = browser.find_element(By.CSS_SELECTOR, "#audit li[data-version='1']")
    _click(browser, first.find_element(By.CSS_SELECTOR, "button.revert"))
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "reason-dialog")))
    browser.find_element(By.ID, "reason-text").send_keys("回到默认再观察一周")
    browser.find_element(By.ID, "reason-ok").click()
    _wait(browser).until(lambda d: "已撤销第 1 版" in d.find_element(By.ID, "apply-status").text)
    top = _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#audit li[data-version='3']"))
    assert "撤销了第 1 版" in top.text and "回到默认再观察一周" in top.text
    weights = _api(base, "GET", "/v1/ops/weights", keys["ops"])[1]["weights"]
    assert weights["default"]["earnings"] == 1.0 and weights["overrides"] == {} and weights["default"]["rating"] == 4.0
    _shot(browser, "ops-reverted")


# Brand -------------------------------------------------------------------------------------------------


def test_brand_reach_what_if_failed_then_corrected_and_new_product(server, browser):
    base, keys, _ = server
    # The key is bound to 好孩子: the page fills it in, whatever the address asks for.
    browser.get(base + "/console/brand?brand=三只松鼠")
    _enter_key(browser, keys["brand"])
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "fig-orders")))
    brand = browser.find_element(By.ID, "brand")
    assert brand.get_attribute("value") == "好孩子" and brand.get_attribute("readonly")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#products tbody tr")) == 6
    # City tiers read 1, 2, 3 … and the chosen horizon looks chosen (pressed), not disabled.
    tiers = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#chart-tier text") if "线城市" in t.text]
    assert tiers == sorted(tiers)
    assert browser.find_element(By.ID, "h-week").get_attribute("aria-pressed") == "true"
    assert not browser.find_element(By.ID, "h-week").get_attribute("disabled")
    orders = [float(r.find_elements(By.TAG_NAME, "td")[3].text.replace(",", ""))
              for r in browser.find_elements(By.CSS_SELECTOR, "#products tbody tr")]
    assert orders == sorted(orders, reverse=True)  # sorted by expected orders
    font = browser.execute_script("return getComputedStyle(document.querySelector('#chart-seller text')).fontSize")
    scale = browser.execute_script("const s = document.getElementById('chart-seller');"
                                   "return s.getBoundingClientRect().width / s.viewBox.baseVal.width")
    assert float(font.replace("px", "")) * scale >= 11.5  # chart text readable at this size
    _shot(browser, "brand")

    # A what-if that succeeds first, so that there are old numbers to hide.
    _type(browser, "wi-commission", "60")
    _click(browser, browser.find_element(By.ID, "wi-run"))
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "wi-result")))
    # Paid commission is a cost to the brand: more of it is red.
    assert browser.find_element(By.ID, "wi-delta-commission").get_attribute("class") == "bad"

    # Failed: 150 % commission and a coupon over the price, refused in the page in Chinese, old result hidden.
    _type(browser, "wi-commission", "150")
    _type(browser, "wi-coupon", "100000")
    _click(browser, browser.find_element(By.ID, "wi-run"))
    _wait(browser).until(lambda d: "佣金比例不能大于 100" in d.find_element(By.ID, "wi-status").text)
    assert not browser.find_element(By.ID, "wi-result").is_displayed()
    assert "invalid" in browser.find_element(By.ID, "wi-commission").get_attribute("class")
    _shot(browser, "brand-what-if-failed")
    # The API says the same in its own words, which the page turns into the same Chinese sentence.
    sentence = browser.execute_async_script("""
      const done = arguments[arguments.length - 1];
      QX.api('POST', '/v1/brands/' + encodeURIComponent('好孩子') + '/reach/what-if', {commission_rate: 1.5, coupon: 5})
        .then(() => done('accepted'), (e) => done(QX.explain(e)));""")
    assert sentence == "输入有误：佣金比例不能大于 1。" or sentence.startswith("输入有误：佣金比例不能大于")

    # Corrected: a price cut of a single product; one click only sends once, with progress beside the button.
    _type(browser, "wi-commission", "")
    _type(browser, "wi-coupon", "")
    Select(browser.find_element(By.ID, "wi-product")).select_by_value("P0")
    assert "现" in browser.find_element(By.ID, "wi-price").get_attribute("placeholder")
    _type(browser, "wi-price", "60")
    _slow_fetch(browser, 1200)
    run = browser.find_element(By.ID, "wi-run")
    _click(browser, run)
    browser.execute_script("arguments[0].click(); arguments[0].click();", run)
    progress = browser.find_element(By.ID, "wi-progress")
    assert progress.is_displayed() and "重算" in progress.text and run.get_attribute("disabled")
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "wi-result")))
    calls = browser.execute_script("return window.__calls")
    assert calls.get("/v1/brands/%E5%A5%BD%E5%AD%A9%E5%AD%90/reach/what-if") == 1, calls
    why = browser.find_element(By.ID, "why-P0").text
    assert "暂停推荐" in why and "排序分" in why  # the 10 % price-move rule and the blend, named
    assert browser.find_element(By.ID, "wi-status").get_attribute("class") == "status"
    _shot(browser, "brand-what-if")

    # A new product: forecast from its nearest titles.
    _type(browser, "np-title", "婴儿纯棉口水巾 20条装")
    Select(browser.find_element(By.ID, "np-category")).select_by_visible_text("母婴")
    _type(browser, "np-price", "59")
    _type(browser, "np-commission", "20")
    _click(browser, browser.find_element(By.ID, "np-run"))
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "np-result")))
    assert browser.find_element(By.ID, "np-orders").is_displayed()
    assert "口水巾" in browser.find_element(By.ID, "np-neighbours").text
    _shot(browser, "brand-new-product")


# Group view --------------------------------------------------------------------------------------------


def test_group_view_shows_the_picks_as_the_api_returns_them(server, browser):
    base, keys, _ = server
    browser.get(base + "/console/group")
    _enter_key(browser, keys["ops"])
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "group-list")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#group-list tbody tr")) == 18
    _click(browser, browser.find_element(By.CSS_SELECTOR, "[data-open='G0']"))
    _wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".pick")))
    status, api = _api(base, "GET", "/v1/groups/G0/picks", keys["ops"])
    assert status == 200
    cards = browser.find_elements(By.CSS_SELECTOR, ".pick")
    assert [c.get_attribute("data-product") for c in cards] == [p["product_id"] for p in api["picks"]]
    first, card = api["picks"][0], cards[0]
    assert first["title"] in card.text and first["copy"]["text"] == card.find_element(By.CSS_SELECTOR, ".copy").text
    assert all(label in card.text for label in first["reason_labels"])
    assert "预测转化率" in card.text and "综合分" in card.text
    raw = json.loads(browser.execute_script("return document.getElementById('raw').textContent"))
    assert raw["picks"] == api["picks"]
    _shot(browser, "group")

    # A seller sees her own groups only, and another seller's group is not found.
    browser.get(base + "/console/group?group=G3")
    _enter_key(browser, keys["seller0"])
    _wait(browser).until(lambda d: "没有找到群「G3」" in d.find_element(By.ID, "status").text)
    ids = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#group-list [data-open]")]
    assert sorted(ids) == ["G0", "G1", "G2"]
    _shot(browser, "group-seller")


# Status ------------------------------------------------------------------------------------------------


def test_status_page(server, browser):
    base, keys, store = server
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    store.add_events("pushes", [{"event_id": f"p{i}", "seller_id": "S0", "group_id": "G0", "product_id": "P0",
                                 "pushed_at": now, "submitted_by": "k", "received_at": now - timedelta(days=i % 5)}
                                for i in range(23)])
    store.add_events("orders", [{"event_id": f"o{i}", "order_id": f"O{i}", "seller_id": "S0", "group_id": "G0",
                                 "product_id": "P0", "ordered_at": now, "quantity": 1, "paid": 9.9, "refunded": False,
                                 "submitted_by": "k", "received_at": now - timedelta(days=i % 3)} for i in range(7)])
    browser.get(base + "/console/status")
    _enter_key(browser, keys["ops"])
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "st-age")))
    assert "刚刚" in browser.find_element(By.ID, "st-age").text
    assert "10-01 – 11-30" in browser.find_element(By.ID, "st-window").text
    row = browser.find_element(By.ID, "metric-ndcg-10").text
    assert "0.231" in row and "群里常买" in row and "+23.5%" in row
    assert "系统默认" in browser.find_element(By.ID, "st-weights").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#feedback-chart rect")) == 28
    assert "转发 23 条、订单 7 条" in browser.find_element(By.ID, "feedback-note").text
    assert "T" not in browser.find_element(By.ID, "artifact").text  # no version ids on the page itself
    _shot(browser, "status")
    # A brand key is told, in Chinese, that the page is not for it.
    _enter_key(browser, keys["brand"])
    _wait(browser).until(lambda d: "只对运营和管理员开放" in d.find_element(By.ID, "status").text)
