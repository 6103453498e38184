"""The live view in a real headless Chromium, against a real gateway and a real mosquitto.

``beacon-gateway run --scene configs/scenes/store.toml --realtime`` runs as a child process (as
systemd runs it), publishing to a mosquitto started for the test; playwright drives the Debian
``chromium`` package (never a browser of its own: no ``playwright install``). The test reads
what the page shows (the scene's zones, subjects in them, health, events that keep coming),
takes a screenshot (``build/live-view.png`` too) and checks it is a real, non-blank image of
the viewport, then stops the gateway and checks the page says "disconnected".

Without chromium or playwright the test skips with the reason, but fails under CI (the ``CI``
environment variable): CI installs both (scripts/system-deps.sh, the ``dev`` extra) and must
really run it. Every wait is bounded and fails with what it waited for; nothing is timed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import pytest

from tests.browser import png
from tests.mosquitto import Mosquitto, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page, ViewportSize

REPO: Final = Path(__file__).resolve().parents[2]
STORE_SCENE: Final = REPO / "configs" / "scenes" / "store.toml"
SCREENSHOT: Final = REPO / "build" / "live-view.png"
SCREENSHOT_NARROW: Final = REPO / "build" / "live-view-narrow.png"
ZONES: Final = ("entrance", "aisle-1", "aisle-2", "aisle-3", "checkout")
SPEED: Final = "20"
"""The scene plays 20 times faster than real time: its 30 minutes last 90 s."""
CHROMIUM: Final = ("chromium", "/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: Final[ViewportSize] = {"width": 1280, "height": 800}
PHONE: Final[ViewportSize] = {"width": 390, "height": 844}
WAIT_S: Final = 60.0
"""Every wait gives up (and fails the test) after this long; never a timing claim."""
MIN_SUBJECTS: Final = 6
"""Subjects on the floor before the screenshot: the store has a dozen at a time once it fills."""


def _unavailable(reason: str) -> None:
    """Skip locally; fail under CI, which installs what the test needs."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser test (scripts/system-deps.sh)")
    pytest.skip(reason)


def chromium_binary() -> str:
    """The Debian chromium executable (skips or fails without it)."""
    for candidate in CHROMIUM:
        found = shutil.which(candidate)
        if found is not None:
            return found
    _unavailable("chromium is not installed (Debian: apt-get install chromium)")
    raise AssertionError  # unreachable: _unavailable raises


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless Debian chromium under playwright, closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - skip without it
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
        raise
    executable = chromium_binary()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, timeout=WAIT_S * 1000
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class GatewayRun:
    """The gateway child process, its ops port and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        """The live view's address."""
        return f"http://127.0.0.1:{self.port}/"

    def log_tail(self) -> str:
        """The end of what the gateway logged (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-3000:]

    def answers(self) -> bool:
        """Whether the live view's state answers; fails the test if the gateway exited."""
        if self.process.poll() is not None:
            pytest.fail(f"the gateway exited ({self.process.returncode}):\n{self.log_tail()}")
        try:
            _state(self.port)
        except (urllib.error.URLError, OSError):
            return False
        return True

    def stop(self) -> int:
        """SIGTERM, and wait for the exit (killed, and the test failed, if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT_S)
            pytest.fail(f"the gateway ignored SIGTERM; killed:\n{self.log_tail()}")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayRun]:
    """``beacon-gateway run`` on the store scene into a fresh mosquitto; always stopped."""
    with Mosquitto() as broker:
        port = free_port()
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BEACON_GATEWAY__")},
            "BEACON_GATEWAY__MQTT__HOST": "127.0.0.1",
            "BEACON_GATEWAY__MQTT__PORT": str(broker.port),
            "BEACON_GATEWAY__OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
            "BEACON_GATEWAY__HTTP__PORT": str(port),
            "BEACON_GATEWAY__LOGGING__FORMAT": "json",
        }
        command = [sys.executable, "-m", "gateway", "run", "--scene", str(STORE_SCENE)]
        log_path = tmp_path / "gateway.log"
        log: IO[bytes]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, "--realtime", "--speed", SPEED],
                env=environ,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            run = GatewayRun(process, port, log_path)
            try:
                wait_until(run.answers, "the gateway's live view to answer", limit_s=WAIT_S)
                yield run
            finally:
                run.stop()


# --------------------------------------------------------------------------- reading the page


def _wait_for(page: Page, script: str, what: str, run: GatewayRun | None = None) -> Any:
    """Wait until ``script`` (a JS expression) is truthy in the page; its value then."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: PLC0415

    try:
        # A function, not an expression: Playwright would eval() an expression, which the
        # page's Content Security Policy (rightly) refuses.
        predicate = f"() => ({script})"
        return page.wait_for_function(predicate, timeout=WAIT_S * 1000, polling=100).json_value()
    except PlaywrightTimeout:
        shown = page.inner_text("body")[:2000]
        log = "" if run is None else f"\ngateway log:\n{run.log_tail()}"
        pytest.fail(f"gave up after {WAIT_S} s waiting for {what}; the page shows:\n{shown}{log}")


def _count(page: Page, name: str) -> int:
    text = page.inner_text(f'#counts [data-count="{name}"] dd')
    digits = "".join(ch for ch in text if ch.isdigit())
    assert digits, f"counter {name} shows {text!r}"
    return int(digits)


def _state(port: int) -> dict[str, Any]:
    """What ``/live/state`` answers."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/live/state", timeout=5) as reply:
        state: dict[str, Any] = json.loads(reply.read())
    return state


def _check_screenshot(data: bytes, width: int, height: int) -> None:
    """A real PNG of the viewport, with a page on it (not one flat colour)."""
    assert png.size(data) == (width, height)
    image = png.decode(data)
    colours = image.colours()
    background = colours.most_common(1)[0][1]
    assert len(colours) > 50, f"only {len(colours)} colours: a blank page?"
    assert background < 0.9 * width * height, "one colour covers 90 % of the screenshot"


# --------------------------------------------------------------------------- the test


def test_the_live_view_shows_the_store_and_follows_it(
    browser: Browser, gateway: GatewayRun, tmp_path: Path
) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    requests: list[str] = []
    errors: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(message.text))
    page.goto(gateway.url, timeout=WAIT_S * 1000)

    _check_zones_and_header(page, gateway)
    _check_subjects_and_events(page, gateway)
    _check_it_follows(page, gateway)
    _check_screenshots(page, tmp_path)

    # Everything came from the gateway itself, and the page ran without errors.
    assert requests
    assert all(url.startswith(gateway.url) for url in requests), requests
    assert not errors
    assert not [text for text in console if "Content Security Policy" in text]

    # The gateway stops: the page says so instead of showing stale data as if live.
    assert gateway.stop() == 0
    _wait_for(
        page, "document.querySelector('#health').textContent === 'disconnected'", "disconnected"
    )
    assert page.is_visible("#banner")
    assert "Disconnected" in page.inner_text("#banner")
    page.close()


def _check_zones_and_header(page: Page, gateway: GatewayRun) -> None:
    """The scene's zones in the configuration's order; the site, gateway and health."""
    _wait_for(page, "document.querySelectorAll('#zones .zone').length > 0", "zone cards", gateway)
    shown = page.eval_on_selector_all("#zones .zone", "cards => cards.map(c => c.dataset.zone)")
    assert tuple(shown) == ZONES
    state = _state(gateway.port)
    where = page.inner_text("#where")
    assert state["site"] in where
    assert state["gateway_id"] in where
    _wait_for(page, "document.querySelector('#health').classList.contains('ready')", "ready")
    assert page.inner_text("#health").strip() == "ready"


def _check_subjects_and_events(page: Page, gateway: GatewayRun) -> None:
    """Shoppers come in: subjects in the zone cards, events in the list."""
    _wait_for(
        page,
        f"document.querySelectorAll('#zones .subject').length >= {MIN_SUBJECTS}",
        f"{MIN_SUBJECTS} subjects in the zones",
        gateway,
    )
    _wait_for(page, "document.querySelectorAll('#events .event').length >= 5", "events", gateway)
    subjects = page.eval_on_selector_all(
        "#zones .subject",
        """rows => rows.map(row => ({
            zone: row.closest('.zone').dataset.zone,
            name: row.querySelector('.subject-name').textContent,
            kind: row.querySelector('.kind').textContent,
            dwell: row.querySelector('.subject-dwell').textContent,
        }))""",
    )
    assert {row["zone"] for row in subjects} <= set(ZONES)
    assert all(row["name"].strip() for row in subjects)
    assert {row["kind"] for row in subjects} <= {"customer", "bag", "unknown"}
    assert all(row["dwell"].endswith(("s", "m")) for row in subjects)
    cards = page.eval_on_selector_all(
        "#zones .zone",
        """cards => cards.map(card => [
            Number(card.querySelector('.zone-count').textContent),
            card.querySelectorAll('.subject').length,
        ])""",
    )
    assert all(present >= listed for present, listed in cards)
    types = page.eval_on_selector_all("#events .event", "rows => rows.map(r => r.dataset.type)")
    assert set(types) <= {"enter", "dwell", "exit", "trigger", "telemetry"}
    assert _count(page, "enter") > 0


def _check_it_follows(page: Page, gateway: GatewayRun) -> None:
    """The event count grows while the scene plays."""
    first = _count(page, "total")
    assert first > 0
    _wait_for(
        page,
        f"""(() => {{
            const dd = document.querySelector('#counts [data-count="total"] dd');
            return dd !== null && Number(dd.textContent.replace(/\\D/g, '')) > {first};
        }})()""",
        f"the event count to grow past {first}",
        gateway,
    )
    assert _count(page, "total") > first


def _check_screenshots(page: Page, tmp_path: Path) -> None:
    """Screenshots at 1280x800 and at a phone's width: real images, kept in build/."""
    shot = tmp_path / "live-view.png"
    page.screenshot(path=shot)
    data = shot.read_bytes()
    _check_screenshot(data, VIEWPORT["width"], VIEWPORT["height"])
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(data)

    page.set_viewport_size(PHONE)  # one column, nothing wider than the screen
    _wait_for(
        page, "document.documentElement.scrollWidth <= window.innerWidth", "no sideways scroll"
    )
    narrow = page.screenshot()
    _check_screenshot(narrow, PHONE["width"], PHONE["height"])
    (tmp_path / "live-view-narrow.png").write_bytes(narrow)
    SCREENSHOT_NARROW.write_bytes(narrow)
    page.set_viewport_size(VIEWPORT)
