"""The real thing: `deepscope dashboard` in a subprocess, driven by headless Debian Chromium.

Visits every page, does one interaction on each, saves a screenshot of each (to
``$DEEPSCOPE_SCREENSHOTS`` if set, else the test's temp folder) and checks that no error or
traceback reached the browser. Also checks that the server listens on loopback only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard import cache as C
from dashboard import runs as R
from tests.dashboard.helpers import RUN_ID, BrowserConsole

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CELL = ("3", "3")  # (true, predicted) class of the confusion-matrix cell the test clicks
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dashboard exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"dashboard did not listen on port {port} within {timeout} s")


@contextlib.contextmanager
def serve_dashboard(runs_dir: Path) -> Iterator[int]:
    """``deepscope dashboard --runs <runs_dir> --port N --no-browser`` in a subprocess while the
    block runs; yields the port, stops the server afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepscope.commands.dashboard", "--runs", str(runs_dir),
         "--port", str(port), "--no-browser"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def server(runs_dir: Path) -> Iterator[int]:
    """The dashboard over the tiny runs; yields the port."""
    with serve_dashboard(runs_dir) as port:
        yield port


def _listen_addresses(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(addr)
                if width == 8:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


def _outward_ip() -> str | None:
    """This machine's non-loopback address (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing lookup only
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_listens_on_loopback_only(server):
    addresses = _listen_addresses(server)
    assert addresses and set(addresses) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, addresses
    ip = _outward_ip()
    if ip is not None:
        with pytest.raises(OSError):
            socket.create_connection((ip, server), timeout=2).close()


def _settle(page, timeout: float = 60.0) -> None:
    """Wait until Streamlit has finished running the script (no status widget, no skeleton)."""
    page.wait_for_selector('[data-testid="stSidebar"]', timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while time.monotonic() < deadline:
        busy = page.locator('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]').count()
        if not busy:
            time.sleep(0.3)
            if not page.locator('[data-testid="stStatusWidget"]').count():
                return
        time.sleep(0.3)
    raise TimeoutError("the app kept running")


def _no_errors(page, name: str) -> str:
    text = page.inner_text("body")
    assert "Traceback" not in text, name
    assert "Error" not in text, (name, text[:2000])
    assert page.locator('[data-testid="stException"]').count() == 0, name
    return text


@pytest.mark.browser
def test_every_page_in_chromium(server, app_env, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    shots = Path(os.environ.get("DEEPSCOPE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{server}"
    p = C.predictions(RUN_ID, R.stamp_of(RUN_ID))  # what the server computes, for the checks
    expected_cell = int(p.confusion[int(CELL[0]), int(CELL[1])])
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console = BrowserConsole(page)
        try:
            # Runs: the table, then open the training form
            page.goto(f"{base}/", wait_until="domcontentloaded")
            page.get_by_text("mlp-digits").first.wait_for(timeout=90_000)
            _settle(page)
            page.get_by_text("Train a preset").click()
            page.get_by_text("Epochs (0 = preset's)").wait_for()
            text = _no_errors(page, "runs")
            assert "Runs" in text and "checks" in text
            page.screenshot(path=str(shots / "1-runs.png"), full_page=True)

            # Training health: switch the per-layer signal
            page.goto(f"{base}/training", wait_until="domcontentloaded")
            page.get_by_text("Per-layer signal").wait_for(timeout=60_000)
            _settle(page)
            page.get_by_role("combobox", name="Per-layer signal").click()
            page.get_by_role("option", name="update / weight ratio").click()
            _settle(page)
            page.locator("text=log10 update_ratio").first.wait_for(timeout=30_000)
            _no_errors(page, "training")
            page.screenshot(path=str(shots / "2-training.png"), full_page=True)

            # Predictions: click a cell of the confusion matrix to list its samples
            page.goto(f"{base}/predictions", wait_until="domcontentloaded")
            page.get_by_text("matching samples").first.wait_for(timeout=60_000)
            _settle(page)
            chart = page.locator('[data-testid="stPlotlyChart"]').first
            col = chart.locator(".xtick text", has_text=CELL[1]).first.bounding_box()
            row = chart.locator(".ytick text", has_text=CELL[0]).first.bounding_box()
            page.mouse.click(col["x"] + col["width"] / 2, row["y"] + row["height"] / 2)
            _settle(page)
            page.get_by_text(f"{expected_cell} matching samples").first.wait_for(timeout=30_000)
            assert page.get_by_role("combobox", name="True class").input_value() == CELL[0]
            _no_errors(page, "predictions")
            page.screenshot(path=str(shots / "3-predictions.png"), full_page=True)

            # Explanations: another sample
            page.goto(f"{base}/explanations", wait_until="domcontentloaded")
            page.get_by_text("Trust:").first.wait_for(timeout=90_000)
            _settle(page)
            box = page.get_by_label("Test sample #")
            box.fill("7")
            box.press("Enter")
            _settle(page)
            page.get_by_text("Trust:").first.wait_for(timeout=90_000)
            assert box.input_value() == "7"
            _no_errors(page, "explanations")
            page.screenshot(path=str(shots / "4-explanations.png"), full_page=True)

            # Audit: run it
            page.goto(f"{base}/audit", wait_until="domcontentloaded")
            page.get_by_role("button", name="Run the audit").click(timeout=60_000)
            page.get_by_text("HTML").first.wait_for(timeout=240_000)
            _settle(page, timeout=120)
            _no_errors(page, "audit")
            page.screenshot(path=str(shots / "5-audit.png"), full_page=True)
        finally:
            browser.close()
    assert console.unexpected() == [], console.lines
    assert sorted(p.name for p in shots.glob("*.png"))[:5] == [
        "1-runs.png", "2-training.png", "3-predictions.png", "4-explanations.png", "5-audit.png"]


def test_stopping_the_command_stops_the_streamlit_server(tmp_path):
    # SIGTERM to `deepscope dashboard` must not leave an orphaned Streamlit server behind
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepscope.commands.dashboard", "--runs", str(tmp_path), "--port",
         str(port), "--no-browser"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(port, proc)
        proc.terminate()
        proc.wait(timeout=20)
        deadline = time.monotonic() + 15
        still_listening = True
        while still_listening and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    time.sleep(0.3)
            except OSError:
                still_listening = False
        assert not still_listening, f"a Streamlit server still listens on port {port}"
    finally:
        if proc.poll() is None:
            proc.kill()
