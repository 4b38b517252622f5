"""The page in a real headless Chromium, used as a person uses it: type, click or press keys, wait, read."""

import json
import os
import threading
import time
import urllib.parse

import pytest

from browser import Browser, find_chromium
from conftest import wait_for_no_containers
from safecode import Sandbox, engine
from safecode.engine import image

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.usefixtures("docker")]

SCREENSHOTS = os.environ.get("SAFECODE_SCREENSHOTS")  # a folder to keep the page's screenshots in


class CountingApp:
    """Counts runs asked for on their way to the real app, to see what the page really sent."""

    def __init__(self, app):
        self.app, self.runs = app, 0

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] in ("/run", "/run/stream") and environ["REQUEST_METHOD"] == "POST":
            self.runs += 1
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def site(web, _docker_session):
    app = CountingApp(web.App(Sandbox(timeout=5, max_code=web.MAX_CODE), max_runs=2,
                              allowed_hosts={"127.0.0.1", "localhost"}))
    server = web.serve(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if not executable:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is not installed, and under CI=true the browser tests must run")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    browser = Browser(executable)
    yield browser
    browser.close()


def text(browser, element_id):
    return browser.evaluate(f"document.getElementById({json.dumps(element_id)}).textContent")


def finished(browser):
    browser.wait_for("!['running', 'idle'].includes(document.getElementById('badge').className.split(' ')[1] || 'idle')"
                     " && !document.getElementById('run').disabled")


def replace_code(browser, code):
    browser.evaluate("document.getElementById('code').focus(); document.getElementById('code').select()")
    browser.type(code)


def type_and_run(site, browser, code):
    """Open the page, type `code` over what is in the editor, click Run and wait for the answer."""
    browser.open(site[1])
    replace_code(browser, code)
    browser.click("#run")
    finished(browser)


def test_type_code_click_run_and_read_the_output(site, browser, tmp_path):
    type_and_run(site, browser, "print('hello from chromium')\nprint(6 * 7)")
    browser.wait_for("document.getElementById('health').textContent === 'sandbox ready'")
    assert text(browser, "stdout") == "hello from chromium\n42\n"
    assert text(browser, "badge") == "ok"
    assert text(browser, "meta").startswith("exit 0 · ") and " s CPU · " in text(browser, "meta")
    assert text(browser, "limit") == "5"  # the server's own time limit, not a number written in the page
    if SCREENSHOTS:
        browser.screenshot(os.path.join(SCREENSHOTS, "desktop.png"))
        browser.screenshot(os.path.join(SCREENSHOTS, "phone.png"), width=390, height=844, mobile=True)
        browser.screenshot(os.path.join(SCREENSHOTS, "desktop.png"))  # and back to a laptop's size


def test_ctrl_enter_runs_and_stderr_is_shown_apart(site, browser):
    _, url = site
    browser.open(url)
    replace_code(browser, "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)")
    browser.press("Enter", "Enter", 13, modifiers=2)
    finished(browser)
    assert text(browser, "stdout") == "out\n" and text(browser, "stderr") == "err\n"
    assert text(browser, "badge") == "error" and text(browser, "meta").startswith("exit 3 · ")


def test_examples_menu_timeout_badge_and_partial_output(site, browser):
    _, url = site
    browser.open(url)
    browser.evaluate(
        "const menu = document.getElementById('examples'); menu.value = 'Infinite loop (timeout)';"
        "menu.dispatchEvent(new Event('change'))"
    )
    assert "while True" in browser.evaluate("document.getElementById('code').value")
    browser.click("#run")
    finished(browser)
    assert text(browser, "badge") == "timeout"
    assert text(browser, "message") == "Execution timed out after 5 seconds."
    assert text(browser, "stdout") == "looping...\n"
    assert text(browser, "meta").startswith("killed · ")


def test_output_is_text_never_html(site, browser):
    type_and_run(site, browser, 'print("<b>bold?</b><img src=x onerror=\\"document.title=1\\">")')
    assert text(browser, "stdout") == '<b>bold?</b><img src=x onerror="document.title=1">\n'
    assert browser.evaluate("document.querySelectorAll('#stdout *').length") == 0
    assert browser.evaluate("document.title") != "1"


def test_run_cannot_be_double_fired(site, browser):
    app, url = site
    browser.open(url)
    replace_code(browser, "import time\ntime.sleep(1)\nprint('once')")
    before = app.runs
    browser.click("#run")
    browser.wait_for("document.getElementById('run').disabled")
    assert text(browser, "run-label") == "Running…" and text(browser, "badge") == "running"
    browser.click("#run")
    browser.press("Enter", "Enter", 13, modifiers=2)
    finished(browser)
    assert app.runs - before == 1 and text(browser, "stdout") == "once\n"


def test_tab_indents_in_the_editor(site, browser):
    _, url = site
    browser.open(url)
    replace_code(browser, "if True:\n")
    browser.press("Tab", "Tab", 9)
    browser.type("print('indented')")
    assert browser.evaluate("document.getElementById('code').value") == "if True:\n    print('indented')"
    assert browser.evaluate("document.activeElement.id") == "code"  # Tab did not leave the editor


def test_code_and_stdin_from_the_address(site, browser):
    _, url = site
    query = urllib.parse.urlencode({"code": "print(input()[::-1])", "stdin": "stressed", "run": "1"})
    browser.open(f"{url}?{query}")
    finished(browser)
    assert text(browser, "stdout") == "desserts\n"


def test_bad_request_is_shown_not_crashed(site, browser):
    type_and_run(site, browser, " ")
    assert text(browser, "badge") == "rejected" and '"code" is empty' in text(browser, "message")


def test_output_appears_while_the_program_runs(site, browser):
    browser.open(site[1])
    replace_code(browser, "import time\nfor i in range(1, 4):\n    print('line', i, flush=True)\n    time.sleep(1)")
    browser.click("#run")
    browser.wait_for("document.getElementById('stdout').textContent === 'line 1\\n'")
    assert text(browser, "badge") == "running"  # the first line is on the page before the program ended
    assert browser.evaluate("!document.getElementById('stop').hidden")
    finished(browser)
    assert text(browser, "stdout") == "line 1\nline 2\nline 3\n" and text(browser, "badge") == "ok"
    assert browser.evaluate("document.getElementById('stop').hidden")


def test_stop_ends_the_run_and_its_container(site, browser):
    browser.open(site[1])
    replace_code(browser, "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(1)")
    browser.click("#run")
    browser.wait_for("document.getElementById('stdout').textContent.startsWith('tick')")
    assert engine.ours(), "the program's container should be running"
    browser.click("#stop")
    browser.wait_for("document.getElementById('badge').textContent === 'stopped'", timeout=5)
    assert not browser.evaluate("document.getElementById('run').disabled")
    assert text(browser, "stdout").startswith("tick\n")  # what it printed stays on the page
    assert wait_for_no_containers(seconds=4) == []  # the server noticed the dropped connection and removed it


@pytest.fixture(scope="module")
def data_site(web, _docker_session):
    """The page with the scientific image and scratch space, as `make demo` serves it when that image is built."""
    scientific = f"{image.REPOSITORY}:3.13-scientific"
    image.ensure_image(scientific)
    app = web.App(Sandbox(timeout=60, image=scientific, memory=image.SCIENTIFIC_MEMORY, scratch="16m"), max_runs=1,
                  allowed_hosts={"127.0.0.1", "localhost"})
    server = web.serve(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_upload_a_csv_plot_it_and_see_the_chart(data_site, browser, tmp_path):
    csv = tmp_path / "sales.csv"
    csv.write_text("month,sales\n1,10\n2,14\n3,9\n4,20\n")
    browser.open(data_site)
    browser.evaluate("document.getElementById('files-in-box').open = true")
    browser.choose_files("#files", [csv])
    browser.wait_for("document.getElementById('files-note').textContent.includes('sales.csv')")
    replace_code(browser, "import pandas as pd, matplotlib.pyplot as plt\ndf = pd.read_csv('sales.csv')\n"
                          "print(len(df))\ndf.plot(x='month', y='sales')\nplt.show()\ndisplay(df)")
    browser.click("#run")
    finished(browser)
    assert text(browser, "badge") == "ok", text(browser, "stderr")
    assert text(browser, "stdout") == "4\n"
    browser.wait_for("document.querySelector('#displays img') && document.querySelector('#displays img').complete")
    assert browser.evaluate("document.querySelector('#displays img').naturalWidth") > 100  # a real chart, decoded
    assert browser.evaluate("document.querySelector('#displays img').src").startswith("data:image/png;base64,")
    assert browser.evaluate("[...document.getElementById('displays').children].map(d => d.firstChild.tagName)") == [
        "IMG", "IFRAME"]  # in the order the program made them
    assert browser.evaluate("document.querySelector('#displays iframe').getAttribute('sandbox')") == ""
    browser.wait_for("document.querySelector('#displays iframe').srcdoc.includes('<table')")
    cells = framed(browser, "TD")  # the DataFrame as a table, inside the sandboxed frame (seen through DevTools)
    assert cells[:2] == ["1", "10"] and len(cells) == 8, cells
    if SCREENSHOTS:
        browser.screenshot(os.path.join(SCREENSHOTS, "plot.png"), height=1400)


def test_html_in_a_display_runs_nothing_in_the_page(site, browser):
    page = "document.title=1;document.body.dataset.owned=1"  # what the program would do to the page
    type_and_run(site, browser, (
        "class Page:\n"
        "    def _repr_html_(self):\n"
        f"        return '<h3>framed</h3><script>parent.{page}</script><img src=x onerror=parent.{page}>'\n"
        "    def _repr_svg_(self):\n"
        f"        return '<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"parent.{page}\"></svg>'\n"
        "display(Page())\n"
        "display({'image/svg+xml': Page()._repr_svg_(), 'text/markdown': 'not shown'}, raw=True)\n"
        f"display({{'text/markdown': '<img src=x onerror={page}>'}}, raw=True)"))
    assert text(browser, "badge") == "ok", text(browser, "stderr")
    browser.wait_for("document.querySelectorAll('#displays > div').length === 3")
    browser.wait_for("document.querySelector('#displays iframe').srcdoc.includes('framed')")
    assert framed(browser, "H3") == ["framed"]  # the HTML was shown...
    title = browser.evaluate("document.title")
    assert browser.evaluate(f"(() => {{ const before = document.title; {page}; const after = document.title; "
                            "document.title = before; delete document.body.dataset.owned; return after; })()") \
        == "1"  # ...its script would have changed the page, had it run in it...
    time.sleep(1)  # ...and it had every chance to
    assert browser.evaluate("document.title") == title and browser.evaluate("document.body.dataset.owned") is None
    assert browser.evaluate("document.querySelector('#displays img').src").startswith("data:image/svg+xml;base64,")
    assert browser.evaluate("document.querySelectorAll('#displays svg, #displays script').length") == 0
    assert browser.evaluate("document.querySelectorAll('#displays pre')[0].textContent") == f"<img src=x onerror={page}>"


def framed(browser, tag, wait=10):
    """The text of each `tag` element inside the page's sandboxed frames, read through DevTools, once a frame has
    loaded one (a frame renders on its own, a moment after its srcdoc is set)."""
    deadline = time.monotonic() + wait
    while True:
        found = browser.evaluate_in_frames(f"[...document.querySelectorAll({json.dumps(tag)})].map(e => e.textContent)")
        texts = [text for frame in found for text in frame]
        if texts or time.monotonic() > deadline:
            return texts
        time.sleep(0.1)


def test_svg_and_other_files_are_only_links(data_site, browser):
    type_and_run((None, data_site), browser, "open('out/x.svg', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\" "
                                     "onload=\"document.title=1\"><script>document.title=2</script></svg>')\n"
                                     "open('out/notes.txt', 'w').write('hi')")
    assert text(browser, "badge") == "ok"
    assert browser.evaluate("document.querySelectorAll('#outfiles img, #outfiles svg, #outfiles object').length") == 0
    assert browser.evaluate("[...document.querySelectorAll('#outfiles a')].map(a => a.download)") == ["notes.txt", "x.svg"]
    assert browser.evaluate("document.title") not in ("1", "2")


def test_keep_state_between_runs(site, browser):
    counting, url = site
    try:
        browser.open(url)
        browser.click("#keep")
        assert browser.evaluate("document.getElementById('keep').checked")
        replace_code(browser, "x = 41")
        browser.click("#run")
        finished(browser)
        assert text(browser, "badge") == "ok"
        replace_code(browser, "print(x + 1)")
        browser.click("#run")
        finished(browser)
        assert text(browser, "stdout") == "42\n"
        browser.click("#keep")  # off: the page ends its session
        browser.wait_for("document.getElementById('keep').checked === false")
        assert wait_for_no_containers(seconds=5) == [], "unchecking did not end the session"
        replace_code(browser, "print(x + 1)")
        browser.click("#run")
        finished(browser)
        assert "NameError" in text(browser, "stderr")  # a fresh run knows nothing of the session
    finally:
        counting.app.sessions.close_all()


def test_tests_panel_adds_cases_runs_them_and_shows_each_verdict(site, browser, tmp_path):
    browser.open(site[1])
    replace_code(browser, "a, b = map(int, input().split())\nprint(a + b)")
    browser.click("#tests-box summary")
    browser.wait_for("document.getElementById('tests-box').open")
    browser.click("#add-case")
    browser.wait_for("document.querySelectorAll('#cases .case').length === 2")
    for number, (given, expected) in enumerate([("1 2", "3"), ("2 2", "5")]):
        for field, value in (("case-stdin", given), ("case-expected", expected)):
            browser.evaluate(f"document.querySelectorAll('#cases .{field}')[{number}].focus()")
            browser.type(value)
    browser.click("#run-tests")
    browser.wait_for("document.querySelectorAll('#verdicts li').length === 3")
    lines = browser.evaluate("[...document.querySelectorAll('#verdicts li')].map(item => item.textContent)")
    assert lines == ["case 1: accepted", "case 2: wrong answer — line 1: expected '5', got '4'", "1 of 2 passed"]
    if SCREENSHOTS:
        browser.screenshot(os.path.join(SCREENSHOTS, "tests-panel.png"))
