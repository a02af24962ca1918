"""`gpt-tui serve`: the session in a web browser through textual-serve. The command's own parts are
tested with a stand-in server; the whole path, in a real headless Chromium driven by Selenium:
the page loads, typed text is analysed, and the panels show (read back through the session's
own export, Ctrl+S, since the browser draws the terminal on a canvas)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpt_tui import cli_serve
from gpt_tui.cli import app

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


class FakeServer:
    """Stands in for textual_serve.server.Server: records what it was given, serves nothing."""

    made: list = []

    def __init__(self, command, host="localhost", port=8000, title=None, **kwargs) -> None:
        FakeServer.made.append(dict(command=command, host=host, port=port, title=title))

    def serve(self, debug: bool = False) -> None:
        return None


@pytest.fixture
def fake_server(monkeypatch):
    import textual_serve.server

    FakeServer.made = []
    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    return FakeServer.made


def test_serve_listens_on_localhost_and_warns_about_one_model_per_tab(fake_server):
    pytest.importorskip("textual_serve")
    result = invoke("serve", "--model", "gpt2", "--dtype", "float32", "--theme", "nord")
    assert result.exit_code == 0, result.stderr
    made, = fake_server
    assert (made["host"], made["port"]) == ("localhost", 8000)
    assert made["command"].endswith("-m gpt_tui --device auto --dtype float32 --model gpt2 --theme nord")
    assert "each browser tab starts its own gpt-tui, which loads its own copy of the model" in result.stderr
    assert "no password" not in result.stderr


def test_another_address_is_warned_about(fake_server):
    pytest.importorskip("textual_serve")
    result = invoke("serve", "--host", "0.0.0.0", "--port", "9000")
    assert result.exit_code == 0 and (fake_server[0]["host"], fake_server[0]["port"]) == ("0.0.0.0", 9000)
    assert "listening on 0.0.0.0, with no password and no TLS" in result.stderr


@pytest.mark.parametrize("host,loopback", [("localhost", True), ("127.0.0.1", True), ("::1", True),
                                           ("0.0.0.0", False), ("192.168.1.5", False), ("myhost", False)])
def test_loopback(host, loopback):
    assert cli_serve.is_loopback(host) is loopback


@pytest.mark.parametrize("args", [["--port", "0"], ["--port", "70000"], ["--theme", "nope"], ["--device", "tpu"]])
def test_bad_options_are_usage_errors(args):
    assert invoke("serve", *args).exit_code == 2


def test_without_textual_serve_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)  # import fails as if absent
    result = invoke("serve")
    assert result.exit_code == 1 and "serve needs textual-serve: pip install 'gpt-tui-explorer[serve]'" in result.stderr


def test_a_port_in_use_is_one_line(monkeypatch):
    pytest.importorskip("textual_serve")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "gpt_tui", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}: " in done.stderr
    assert "Traceback" not in done.stderr


# -- in a real browser ------------------------------------------------------------------------------------------


def browser_or_skip():
    """(chromium, chromedriver) paths, or skip saying what is missing."""
    pytest.importorskip("textual_serve", reason="textual-serve is not installed (the 'serve' extra)")
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    return chromium, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, server: subprocess.Popen, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gpt-tui serve ended: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as page:
                return page.read().decode()
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


def test_the_session_works_in_a_real_browser(tmp_path):
    chromium, driver_path = browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "GPT_TUI_CONFIG_DIR": str(tmp_path / "cfg")}
    server = subprocess.Popen([sys.executable, "-m", "gpt_tui", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--device", "cpu"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    options.binary_location = chromium
    browser = None
    try:
        assert "textual-terminal" in wait_for_page(f"http://127.0.0.1:{port}/", server)
        browser = webdriver.Chrome(options=options, service=Service(driver_path))
        browser.get(f"http://127.0.0.1:{port}/")
        keys = None
        deadline = time.monotonic() + 60
        while keys is None and time.monotonic() < deadline:  # the terminal appears once the page's script ran
            found = browser.find_elements(By.CSS_SELECTOR, ".xterm-helper-textarea")
            keys = found[0] if found else time.sleep(0.3)
        assert keys is not None, "the page never showed a terminal"
        time.sleep(2)  # the session's first frame
        keys.send_keys("strawberry")
        analysis = None
        deadline = time.monotonic() + 150  # the model loads in the tab's own process: slow on a busy machine
        while analysis is None and time.monotonic() < deadline:
            ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
            time.sleep(2)
            analysis = next(iter(sorted(tmp_path.glob("gpt-tui-*.json"))), None)
        browser.save_screenshot(str(tmp_path / "browser.png"))
        assert analysis is not None, "no analysis was exported: the typed text was never analysed"
        data = json.loads(analysis.read_text())
        assert data["text"] == "strawberry" and [t["text"] for t in data["tokens"]] == ["st", "raw", "berry"]
        screen = analysis.with_suffix(".svg").read_text().replace("&#160;", " ")
        for panel in ("Tokens", "Attention", "Next-token candidates", "Embedding neighbours", "Generation"):
            assert panel in screen, panel
    finally:
        if browser is not None:
            browser.quit()
        os.killpg(server.pid, signal.SIGINT)  # textual-serve stops its sessions on Ctrl+C
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
