#!/usr/bin/env python3
"""The web console in a real browser: headless Chromium from Debian, driven
through Debian's chromedriver by selenium, against a running stack after
real runs (stack.c starts it and says, from the database and the API, what
each page must show).

Checks: the runs page lists the runs with their three stages and records,
its filters narrow the list; a run's page shows each stage's counts, the
rejected bars by rule, its objects, completeness and DQ results; the job
page's heat map shows the day left out as a gap and the others covered or
closed, and its chart draws as many candles as gold has rows in range; an
unknown id, a bad date and an unreachable API show #error with a message;
Tab reaches the filters and a run link; every control has a label. It
prints the runs page's render time with 10,000 executions in the database
as a "# render_ms=" line (a figure, not a check), saves a screenshot of
each page, and ends with "N passed, N failed".

Usage: test_console.py --stack BUILD/tests/browser_stack --facts FILE
                       --shots DIR [--log FILE]
"""

import argparse
import base64
import json
import os
import select
import statistics
import subprocess
import sys
import time
import traceback
import uuid

MULT = float(os.environ.get("TF_TEST_TIMEOUT_MULT", "1") or 1)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

passed = 0
failed = 0


def ok(cond, name, detail=""):
    """Counts one check and prints its TAP-like line."""
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}", flush=True)
    else:
        failed += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""), flush=True)
    return cond


def summary():
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


class Stack:
    """stack.c as a child: 'ready' on its stdout once the runs are done."""

    def __init__(self, binary, facts):
        self.facts_path = facts
        if os.path.exists(facts):
            os.unlink(facts)
        self.proc = subprocess.Popen(
            [binary, facts], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def line(self, seconds):
        """The next line of the stack's stdout, None on timeout or end."""
        ready, _, _ = select.select([self.proc.stdout], [], [], seconds)
        if not ready:
            return None
        text = self.proc.stdout.readline()
        return text.rstrip("\n") if text else None

    def wait_ready(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.line(max(0.1, deadline - time.monotonic()))
            if text is None:
                if self.proc.poll() is not None:
                    return f"the stack exited ({self.proc.returncode}) before it was ready"
                continue
            if text == "ready":
                return None
            print(f"# stack: {text}", flush=True)
        return f"the stack was not ready within {seconds:.0f} s"

    def command(self, cmd, seconds):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.line(seconds)

    def stop(self):
        """Ends the stack (end of its input); its exit status, -1 when it had to be killed."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60 * MULT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -1
        for text in self.proc.stdout.read().splitlines():
            print(f"# stack: {text}", flush=True)
        return self.proc.returncode


def start_browser(log):
    """Headless Chromium through Debian's chromedriver (no download of either)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is missing (Debian's {pkg}; tests/env/deps.sh installs it)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1366,900",  # a laptop screen
        "--lang=en-US",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        opts.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER, log_output=log)
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30 * MULT)
    driver.set_script_timeout(30 * MULT)
    return driver


# ---- page helpers ----


def ready_state(driver):
    return driver.execute_script("return document.body ? document.body.dataset.ready || '' : ''")


def wait_for(what, fn, seconds):
    """Polls fn until it returns a true value; returns that value, or the last one on timeout."""
    deadline = time.monotonic() + seconds * MULT
    value = None
    while True:
        try:
            value = fn()
        except Exception:  # a stale element while the page redraws
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def open_route(driver, base, route, want, fresh=False):
    """Shows route (e.g. '#/runs') and waits until the page says it is ready or in error."""
    here = driver.current_url
    if fresh or not here.startswith(base) or here == base + route:
        # A new document: nothing of the page before (its data-ready) is left.
        driver.get("about:blank")
        driver.get(base + route)
    else:
        driver.execute_script(
            "if (document.body) document.body.dataset.ready = '';"
            "location.hash = arguments[0];",
            route,
        )
    state = wait_for(route, lambda: ready_state(driver) in (want, "error") and ready_state(driver), 20)
    if state != want:
        detail = f"body.dataset.ready={state!r}"
        if state == "error":
            detail += f", #error says {error_text(driver)!r}"
        return detail
    return None


def error_text(driver):
    from selenium.webdriver.common.by import By

    els = driver.find_elements(By.ID, "error")
    return els[0].text.strip() if els else None


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver, selector):
    els = css(driver, selector)
    return els[0] if els else None


def int_text(el):
    """The integer an element shows ('1,170' or '1170'), None when it shows none."""
    if el is None:
        return None
    text = el.text.strip().replace(",", "").replace("\u202f", "").replace("\u00a0", "")
    try:
        return int(text)
    except ValueError:
        return None


def shot(driver, shots, name, max_height=4000):
    """A PNG of the page from its top (max_height px of it at most), at shots/name."""
    driver.execute_script("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur();")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    width = driver.execute_script("return document.documentElement.clientWidth")
    png = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], max_height), "scale": 1},
    })
    path = os.path.join(shots, name)
    with open(path, "wb") as fp:
        fp.write(base64.b64decode(png["data"]))
    return path


def set_control(driver, el, value):
    """Gives a select or an input a value as a user would, with its input and change events."""
    from selenium.webdriver.support.ui import Select

    if el.tag_name == "select":
        Select(el).select_by_value(value)
    else:
        driver.execute_script(
            "const el = arguments[0], v = arguments[1];"
            "const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;"
            "set.call(el, v);"
            "el.dispatchEvent(new Event('input', {bubbles: true}));"
            "el.dispatchEvent(new Event('change', {bubbles: true}));",
            el,
            value,
        )


def unlabelled(driver):
    """The controls of the page with no label: inputs, selects and text areas without a label
    element or aria-label(ledby), buttons with neither text nor aria-label."""
    return driver.execute_script(
        """
        const out = [];
        for (const el of document.querySelectorAll('input, select, textarea')) {
          if (el.type === 'hidden') continue;
          const named = (el.labels && el.labels.length > 0) ||
            (el.getAttribute('aria-label') || '').trim() !== '' ||
            (el.getAttribute('aria-labelledby') || '').trim() !== '';
          if (!named) out.push(el.outerHTML.slice(0, 120));
        }
        for (const el of document.querySelectorAll('button')) {
          if ((el.textContent || '').trim() === '' &&
              (el.getAttribute('aria-label') || '').trim() === '')
            out.push(el.outerHTML.slice(0, 120));
        }
        return out;
        """
    )


# ---- the checks ----


def check_runs_page(driver, base, facts, shots):
    err = open_route(driver, base, "#/runs", "runs", fresh=True)
    if not ok(err is None, "the runs page renders", err or ""):
        return
    ok(one(driver, "table#runs-table") is not None, "the runs page has table#runs-table")
    for run in facts["runs"]:
        rid = run["execution_id"]
        row = one(driver, f'table#runs-table tr[data-execution-id="{rid}"]')
        if not ok(row is not None, f"the runs page lists run {rid} ({run['kind']}, {run['day']})"):
            continue
        ok(row.get_attribute("data-job") == facts["job"], f"run {rid}: data-job is {facts['job']}",
           f"got {row.get_attribute('data-job')!r}")
        for st in run["stages"]:
            cell = row.find_elements("css selector", f'td[data-stage="{st["stage"]}"]')
            cell = cell[0] if cell else None
            status = cell.get_attribute("data-status") if cell else None
            ok(status == "SUCCESS" and st["status"] == "SUCCESS",
               f"run {rid}: {st['stage']} is SUCCESS on the runs page",
               f"page {status!r}, database {st['status']!r}")
            out = cell.find_elements("css selector", '[data-field="records_out"]') if cell else []
            got = int_text(out[0]) if out else None
            ok(got == st["records_out"], f"run {rid}: {st['stage']} records_out {st['records_out']}",
               f"page shows {got!r}")
        links = row.find_elements("css selector", f'a[href$="#/runs/{rid}"]')
        ok(len(links) > 0, f"run {rid}: its row links to #/runs/{rid}")
    shot(driver, shots, "runs.png", max_height=1000)  # the newest runs, not all 50


def rows_now(driver):
    """(data-job, [data-status of each stage]) of every run row shown."""
    return [
        (r.get_attribute("data-job"),
         [c.get_attribute("data-status") for c in r.find_elements("css selector", "td[data-stage]")])
        for r in css(driver, "table#runs-table tr[data-execution-id]")
    ]


def pick_filter(driver, sel, value):
    """Chooses value in select sel of the runs page; the state the page settles in."""
    from selenium.webdriver.support.ui import Select

    Select(one(driver, sel)).select_by_value(value)  # its change event redraws the page
    return wait_for(sel, lambda: ready_state(driver) in ("runs", "error") and ready_state(driver), 20)


def check_filters(driver, base, facts):
    err = open_route(driver, base, "#/runs", "runs", fresh=True)
    if err:
        ok(False, "filters: the runs page renders", err)
        return
    if not ok(one(driver, "select#filter-job") is not None and one(driver, "select#filter-status") is not None,
              "the runs page has select#filter-job and select#filter-status"):
        return
    bulk = facts["bulk_job"]
    state = pick_filter(driver, "#filter-job", bulk)
    rows = rows_now(driver)
    ok(state == "runs" and rows and all(j == bulk for j, _ in rows),
       f"filtering by job {bulk} lists only its runs ({len(rows)} shown)",
       f"ready={state!r}, jobs shown: {sorted(set(j for j, _ in rows))}")
    state = pick_filter(driver, "#filter-status", "FAILED")
    rows = rows_now(driver)
    ok(state == "runs" and rows and all(j == bulk and "FAILED" in sts for j, sts in rows),
       f"filtering by job {bulk} and FAILED lists only its failed runs ({len(rows)} shown, "
       f"{facts['bulk_failed']} in the database)", f"ready={state!r}, rows: {rows[:3]}")
    ok(len(rows) == min(50, facts["bulk_failed"]),
       f"the first page of failed {bulk} runs holds min(50, {facts['bulk_failed']}) rows", f"{len(rows)} shown")
    ok("job_name=" + bulk in driver.current_url and "status=FAILED" in driver.current_url,
       "the filters are in the page's address", driver.current_url)
    pick_filter(driver, "#filter-job", facts["job"])
    state = pick_filter(driver, "#filter-status", "SUCCESS")
    ids = {r.get_attribute("data-execution-id") for r in css(driver, "table#runs-table tr[data-execution-id]")}
    want = {r["execution_id"] for r in facts["runs"]}
    ok(state == "runs" and want <= ids, f"filtering by job {facts['job']} and SUCCESS lists both runs",
       f"ready={state!r}, {len(ids)} rows")


def check_run_page(driver, base, run, facts, shots):
    rid = run["execution_id"]
    err = open_route(driver, base, f"#/runs/{rid}", "run")
    if not ok(err is None, f"the run page of {rid} ({run['kind']}) renders", err or ""):
        return
    for st in run["stages"]:
        sec = one(driver, f'section[data-stage="{st["stage"]}"]')
        if not ok(sec is not None, f"run {rid}: section[data-stage={st['stage']}]"):
            continue
        status = sec.find_elements("css selector", '[data-field="status"]')
        status = status[0].text.strip() if status else None
        ok(status == st["status"], f"run {rid}: {st['stage']} status {st['status']}", f"page shows {status!r}")
        for field in ("records_in", "records_out", "records_rejected"):
            els = sec.find_elements("css selector", f'[data-field="{field}"]')
            got = int_text(els[0]) if els else None
            ok(got == st[field], f"run {rid}: {st['stage']} {field} {st[field]}", f"page shows {got!r}")
    # Rejected bars, by rule, with their counts.
    shown = {r.get_attribute("data-rule"): r for r in css(driver, "table#rejects tr[data-rule]")}
    ok(one(driver, "table#rejects") is not None, f"run {rid}: table#rejects")
    want = {r["rule"]: r["count"] for r in run["rejects"]}
    ok(set(shown) == set(want), f"run {rid}: rejected rules {sorted(want)}", f"page shows {sorted(shown)}")
    for rule, count in want.items():
        el = shown.get(rule)
        cnt = el.find_elements("css selector", '[data-field="count"]') if el else []
        got = int_text(cnt[0]) if cnt else None
        ok(got == count, f"run {rid}: {count} bar(s) rejected by {rule}", f"page shows {got!r}")
    # Objects, completeness per ticker, DQ results.
    objects = css(driver, "table#objects tbody tr")
    ok(len(objects) > 0, f"run {rid}: table#objects lists objects", f"{len(objects)} rows")
    tickers = sorted(r.get_attribute("data-ticker") for r in css(driver, "table#completeness tr[data-ticker]"))
    want_t = sorted(c["ticker"] for c in run["completeness"])
    ok(tickers == want_t and len(want_t) > 0, f"run {rid}: completeness of {want_t}", f"page shows {tickers}")
    checks = sorted({r.get_attribute("data-check") for r in css(driver, "table#dq tr[data-check]")})
    want_c = sorted({d["check_name"] for d in run["dq"]})
    ok(checks == want_c and len(want_c) > 0, f"run {rid}: DQ results of {want_c}", f"page shows {checks}")
    if run["rejects"]:
        shot(driver, shots, "run.png")


def draw_chart(driver, interval, facts):
    """Sets the chart's ticker, interval and range as a user would; the data-candles drawn."""
    from selenium.webdriver.support.ui import Select

    ch = facts["chart"]
    for sel, value in (("select#chart-ticker", ch["ticker"]), ("select#chart-interval", interval)):
        Select(one(driver, sel)).select_by_value(value)
    set_control(driver, one(driver, "#chart-from"), ch["from"])
    # Each change draws again (the newest draw wins); this last one sets ready once drawn.
    set_control(driver, one(driver, "#chart-to"), ch["to"])
    state = wait_for("chart", lambda: ready_state(driver) in ("job", "error") and ready_state(driver), 20)
    return state, candles(driver)


def candles(driver):
    """div#chart's data-candles as a number, None when it has none."""
    el = one(driver, "div#chart")
    v = el.get_attribute("data-candles") if el else None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def check_job_page(driver, base, facts, shots):
    job = facts["job"]
    err = open_route(driver, base, f"#/jobs/{job}", "job")
    if not ok(err is None, f"the job page of {job} renders", err or ""):
        return
    # The API agrees that the day left out is a gap.
    gap = facts["gap_day"]
    gaps = (facts.get("gaps") or {}).get("gaps") or []
    ok(any(g["start"] <= f"{gap}T00:00:00Z" and g["end"] >= f"{gap}T23:59:59Z" for g in gaps),
       f"GET /v1/jobs/{job}/gaps names {gap}", json.dumps(gaps))
    cells = {c.get_attribute("data-day"): c.get_attribute("data-state") for c in css(driver, "#heatmap [data-day]")}
    for day, state in sorted(facts["days"].items()):
        ok(cells.get(day) == state, f"heat map: {day} is {state}", f"page shows {cells.get(day)!r}")
    ok(len(cells) >= len(facts["days"]), "the heat map has one cell per day of the range",
       f"{len(cells)} cells")
    # The chart: candles drawn = gold rows in range, hourly then daily.
    ch = facts["chart"]
    for interval, key in (("hour", "hourly"), ("day", "daily")):
        state, got = draw_chart(driver, interval, facts)
        ok(state == "job" and got == ch[key] and ch[key] > 0,
           f"chart of {ch['ticker']}, {key}, {ch['from']} to {ch['to']}: {ch[key]} candles "
           "(the gold rows in range)", f"ready={state!r}, data-candles={got!r}, #error {error_text(driver)!r}")
        ok(f"interval={interval}" in driver.current_url and f"from={ch['from']}" in driver.current_url,
           f"the chart's {key} range is in the page's address", driver.current_url)
    row = one(driver, f'table#backfills tr[data-backfill-id="{facts["backfill_id"]}"]')
    done = row.find_elements("css selector", '[data-field="completed"]') if row else []
    ok(row is not None and row.get_attribute("data-status") == "SUCCESS",
       "table#backfills lists the backfill as SUCCESS", row.get_attribute("data-status") if row else "no row")
    want = f"{facts['backfill_days']} / {facts['backfill_days']}"
    ok(bool(done) and done[0].text.strip() == want, f"the backfill shows {want} days through gold",
       done[0].text if done else "no completed field")
    sched = one(driver, '#config [data-field="schedule"], [data-field="schedule"]')
    text = (sched.get_attribute("textContent") or "") if sched else ""
    ok(text.startswith("none: runs start when asked"),
       f"the job's configuration says {job} has no schedule", repr(text))
    shot(driver, shots, "job.png")


def check_errors(driver, base, facts):
    bogus = str(uuid.uuid4())
    for route, what in (
        (f"#/runs/{bogus}", "an unknown execution id"),
        ("#/jobs/no_such_job", "an unknown job"),
    ):
        err = open_route(driver, base, route, "error", fresh=True)
        shown = error_text(driver)
        vis = one(driver, "#error")
        ok(err is None and vis is not None and vis.is_displayed() and bool(shown),
           f"{what} ({route}) shows #error with a message", err or f"#error text {shown!r}")
    # A bad date in the chart's range: typed into its control, and in the page's address.
    err = open_route(driver, base, f"#/jobs/{facts['job']}", "job", fresh=True)
    frm = one(driver, "#chart-from")
    if err or frm is None:
        ok(False, "a bad date in #chart-from shows #error with a message", err or "no #chart-from")
    else:
        set_control(driver, frm, "2024-02-30")
        state = wait_for("bad date", lambda: ready_state(driver) == "error" and "error", 10)
        shown = error_text(driver)
        vis = one(driver, "#error")
        ok(state == "error" and vis is not None and vis.is_displayed() and bool(shown),
           "a bad date (2024-02-30) in #chart-from shows #error with a message",
           f"ready={ready_state(driver)!r}, #error text {shown!r}")
    route = f"#/jobs/{facts['job']}?interval=day&from=2024-13-01&to=2024-03-04"
    err = open_route(driver, base, route, "error", fresh=True)
    shown = error_text(driver)
    vis = one(driver, "#error")
    ok(err is None and vis is not None and vis.is_displayed() and bool(shown),
       f"a bad date in the address ({route}) shows #error with a message", err or f"#error text {shown!r}")


def check_keyboard(driver, base):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    err = open_route(driver, base, "#/runs", "runs", fresh=True)
    if err:
        ok(False, "keyboard: the runs page renders", err)
        return
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.focus();")
    seen = []
    for _ in range(80):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        seen.append(driver.execute_script(
            "const e = document.activeElement;"
            "return e ? [e.id || '', e.tagName, e.getAttribute('href') || ''] : ['', '', ''];"))
        if any(s[0] == "filter-job" for s in seen) and any(s[0] == "filter-status" for s in seen) and any(
            s[2].startswith("#/runs/") for s in seen
        ):
            break
    ok(any(s[0] == "filter-job" for s in seen), "Tab reaches #filter-job")
    ok(any(s[0] == "filter-status" for s in seen), "Tab reaches #filter-status")
    link = next((s for s in seen if s[2].startswith("#/runs/")), None)
    ok(link is not None, "Tab reaches a run link", f"focus went through {seen[:12]}")
    if link:
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        state = wait_for("enter", lambda: ready_state(driver) in ("run", "error") and ready_state(driver), 15)
        ok(state == "run" and driver.current_url.endswith(link[2]),
           "Enter on a focused run link opens its page", f"ready={state!r} url={driver.current_url}")


def check_labels(driver, base, facts):
    """Every control has a label, and each page fits a laptop's window."""
    for route, want in (("#/runs", "runs"), (f"#/runs/{facts['runs'][1]['execution_id']}", "run"),
                        (f"#/jobs/{facts['job']}", "job")):
        err = open_route(driver, base, route, want, fresh=True)
        if err:
            ok(False, f"labels: {route} renders", err)
            continue
        missing = unlabelled(driver)
        ok(not missing, f"every control of {route} has a label", "; ".join(missing[:5]))
        wide = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        ok(wide[0] <= wide[1], f"{route} fits a 1366 px wide window (no sideways scrolling)",
           f"the page is {wide[0]} px wide in {wide[1]} px")


RENDER_PROBE = """
(function () {
  window.__tfReadyAt = null;
  new MutationObserver(function () {
    if (window.__tfReadyAt === null && document.body && document.body.dataset.ready === 'runs')
      window.__tfReadyAt = performance.now();
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-ready']});
})();
"""


def measure_render(driver, base, facts):
    """The runs page from navigation to data-ready="runs", in the browser's clock."""
    probe = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RENDER_PROBE})
    times = []
    try:
        for _ in range(5):
            driver.get("about:blank")
            driver.get(base + "#/runs")
            at = wait_for("render", lambda: driver.execute_script("return window.__tfReadyAt"), 20)
            if at is None:
                ok(False, "the runs page renders for timing", f"ready={ready_state(driver)!r}")
                return
            times.append(float(at))
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": probe["identifier"]})
    rows = len(css(driver, "table#runs-table tr[data-execution-id]"))
    print(f"# render_ms={statistics.median(times):.1f} (median of {len(times)} loads of #/runs from "
          f"navigation start to data-ready; min {min(times):.1f}, max {max(times):.1f}; "
          f"{facts['executions']} executions in the database, {rows} rows drawn)", flush=True)


def check_unreachable(driver, base, facts, stack):
    err = open_route(driver, base, "#/runs", "runs", fresh=True)
    if err:
        ok(False, "an unreachable API shows #error with a message", f"the runs page did not render: {err}")
        return
    answer = stack.command("stop extract", 60 * MULT)
    ok(answer is not None and answer.startswith("stopped extract"), "extract stopped", repr(answer))
    err = open_route(driver, base, f"#/jobs/{facts['job']}", "error")
    shown = error_text(driver)
    vis = one(driver, "#error")
    ok(err is None and vis is not None and vis.is_displayed() and bool(shown),
       "an unreachable API shows #error with a message", err or f"#error text {shown!r}")


def run_checks(a, stack):
    """Everything between the stack's start and its stop; returns the browser to quit (or None)."""
    try:
        driver = start_browser(a.log)
        ok(True, "headless Chromium starts through " + CHROMEDRIVER)
    except Exception as exc:  # the reason, never a silent pass
        first = (str(exc).strip().splitlines() or [""])[0]
        ok(False, "headless Chromium starts through " + CHROMEDRIVER,
           f"{type(exc).__name__}: {first} (chromedriver's log: {a.log})")
        return None
    problem = stack.wait_ready(240 * MULT)
    if not ok(problem is None, "the stack is up after real runs", problem or ""):
        return driver
    with open(a.facts) as fp:
        facts = json.load(fp)
    base = f"http://127.0.0.1:{facts['ports']['extract']}/ui/"
    print(f"# console {base}, runs {[r['execution_id'] for r in facts['runs']]}", flush=True)
    for name, fn in (
        ("runs page", lambda: check_runs_page(driver, base, facts, a.shots)),
        ("filters", lambda: check_filters(driver, base, facts)),
        ("run pages", lambda: [check_run_page(driver, base, r, facts, a.shots) for r in facts["runs"]]),
        ("job page", lambda: check_job_page(driver, base, facts, a.shots)),
        ("errors", lambda: check_errors(driver, base, facts)),
        ("keyboard", lambda: check_keyboard(driver, base)),
        ("labels", lambda: check_labels(driver, base, facts)),
        ("render time", lambda: measure_render(driver, base, facts)),
        ("unreachable API", lambda: check_unreachable(driver, base, facts, stack)),
    ):
        try:
            fn()
        except Exception:
            ok(False, f"{name}: no exception", traceback.format_exc(limit=3).replace("\n", " | "))
    print(f"# screenshots in {a.shots}", flush=True)
    return driver


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stack", required=True)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--log", default=os.devnull)
    a = ap.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    for name in ("runs.png", "run.png", "job.png"):
        if os.path.exists(os.path.join(a.shots, name)):
            os.unlink(os.path.join(a.shots, name))
    if not os.access(a.stack, os.X_OK):
        ok(False, "the stack program is built", f"{a.stack} is missing (make {a.stack})")
        return summary()
    stack = Stack(a.stack, a.facts)
    driver = None
    try:
        driver = run_checks(a, stack)
    finally:
        if driver is not None:
            driver.quit()
        code = stack.stop()
        ok(code == 0, "the stack's services stopped cleanly", f"exit status {code}")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
