"""``visdiff serve`` in a real browser: Debian's chromium driven by selenium through
chromium-driver, against a real uvicorn server. The page loads, a typed hypothesis appears
ranked, a click shows the images of A and B; screenshots are kept under
``build/test-artifacts/serve/`` (``$VISDIFF_TEST_ARTIFACTS`` to choose another folder).

Not skipped when the browser is missing: the test fails saying what to install.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.test_serve import running_server, stages_for
from visdiff.serve import create_app, serve_new_run

ARTIFACTS = Path(os.environ.get("VISDIFF_TEST_ARTIFACTS", "build/test-artifacts")) / "serve"
WAIT_S = 60  # a bound for a stuck page, not a measurement
INJECTION = '<img src=x onerror="document.title=\'owned\'">'


def scene(path: Path, background: int, seed: int) -> None:
    """A generated picture: a dark or bright background with a few coloured shapes."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (96, 80), (background,) * 3)
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = (int(v) for v in rng.integers(0, 70, 2))
        colour = tuple(int(c * (0.3 if background < 128 else 1.0)) for c in rng.integers(60, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + 26, y + 20], fill=colour)
    pixels = np.asarray(image).astype(int) + rng.integers(-12, 12, (80, 96, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.fail("chromium and chromium-driver are needed to test visdiff serve in a browser: run "
                    "`apt-get install -y chromium chromium-driver` (Debian; `make test` installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server_url(offline_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for i in range(10):
        scene(folder / "night" / f"night-{i}.png", 30, seed=i)
        scene(folder / "day" / f"day-{i}.png", 225, seed=100 + i)
    served = serve_new_run(stages_for(offline_models, tmp_path_factory.mktemp("cache")),
                           folder / "night", folder / "day")
    with running_server(create_app(served)) as url:
        yield url


def page_errors(driver) -> list[str]:
    # Console errors, CSP violations and failed loads; the favicon the page does not have aside.
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]


def test_page_ranks_a_typed_hypothesis_and_shows_its_images(browser, server_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(server_url + "/")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#ranking tbody tr")))
    assert browser.find_element(By.ID, "title").text == "A = night vs B = day"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")) >= 1
    # The first row is shown at once: its score histogram and the images of A.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery-a img")) == 10)
    browser.save_screenshot(str(ARTIFACTS / "1-loaded.png"))

    field = browser.find_element(By.ID, "hypothesis")
    field.send_keys("photos taken at night")
    field.submit()
    typed_row = '#typed tbody tr[data-hypothesis="photos taken at night"]'
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, typed_row)))
    cells = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, typed_row + " td")]
    assert cells[:2] == ["1", "photos taken at night"] and cells[2].startswith("1.000 [0.")

    browser.find_element(By.CSS_SELECTOR, typed_row).click()
    wait.until(lambda d: d.find_element(By.ID, "detail-title").text == "photos taken at night")
    wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#gallery-a img, #gallery-b img')]"
        ".every(img => img.complete && img.naturalWidth > 0) && document.querySelectorAll('.gallery img').length"
    ) == 20)
    captions_a = [caption.text.split(" ") for caption in browser.find_elements(By.CSS_SELECTOR, "#gallery-a figcaption")]
    captions_b = [caption.text.split(" ") for caption in browser.find_elements(By.CSS_SELECTOR, "#gallery-b figcaption")]
    assert all(name.startswith("night-") for _, name in captions_a)
    assert all(name.startswith("day-") for _, name in captions_b)
    scores_a = [float(score) for score, _ in captions_a]
    assert scores_a == sorted(scores_a, reverse=True) and min(scores_a) > max(float(score) for score, _ in captions_b)
    assert browser.find_elements(By.CSS_SELECTOR, "#histogram rect.a")
    assert browser.find_elements(By.CSS_SELECTOR, "#histogram rect.b")
    browser.save_screenshot(str(ARTIFACTS / "2-images.png"))  # docs/serve.png is this one

    # A hypothesis that is markup stays text: no element is made of it, no script runs.
    field.clear()
    field.send_keys(INJECTION)
    field.submit()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#typed tbody tr")) == 2)
    wait.until(lambda d: d.find_element(By.ID, "detail-title").text == INJECTION)
    typed = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#typed tbody tr td:nth-child(2)")]
    assert typed == ["photos taken at night", INJECTION]  # ranked: AUROC 1.0, then 0.5
    assert browser.find_elements(By.CSS_SELECTOR, "#typed img, #detail-title img") == []
    assert browser.title == "visdiff: night vs day"
    browser.save_screenshot(str(ARTIFACTS / "3-markup-as-text.png"))

    assert page_errors(browser) == []
    for shot in ("1-loaded.png", "2-images.png", "3-markup-as-text.png"):
        grey = np.asarray(Image.open(ARTIFACTS / shot).convert("L"))
        assert grey.shape[1] >= 1000 and len(np.unique(grey)) > 50  # drawn, not blank
