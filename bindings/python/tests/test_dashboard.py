"""The scheduler's dashboard and /metrics, against real processes: a
rask-scheduler with its dashboard and two rask-worker processes.

/metrics is read with prometheus_client's own text parser and its counts
checked against the computation; the pages are checked in a real headless
Debian chromium driven by Selenium (scripts/setup.sh installs chromium and
chromium-driver, scripts/test.sh installs selenium and prometheus_client).
Screenshots go to target/dashboard-*.png."""

import collections
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

import rask

from conftest import REPO

SCHEDULER = os.path.join(REPO, "target", "release", "rask-scheduler")
WORKER = os.path.join(REPO, "target", "release", "rask-worker")
N_INC, N_ADD = 30, 15  # + one task that errs


def _line(proc, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"{proc.args[0]} ended before printing {pattern!r}")
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    raise AssertionError(f"no {pattern!r} within {timeout} s")


@pytest.fixture(scope="module")
def cluster():
    """(scheduler address, dashboard base URL, worker addresses), with the
    computation done: N_INC inc, N_ADD add over them, one div by zero."""
    procs = []
    try:
        s = subprocess.Popen(
            [SCHEDULER, "--port", "0", "--dashboard-address", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        procs.append(s)
        address = _line(s, r"listening on (\S+)")
        link = _line(s, r"dashboard at (\S+)")
        assert link.endswith("/status")
        base = link[: -len("/status")]
        workers = []
        for i in range(2):
            w = subprocess.Popen(
                [WORKER, address, "--nthreads", "2", "--name", f"w{i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            procs.append(w)
            workers.append(_line(w, r"serving data on (\S+?),"))
        with rask.Client(address, timeout=30) as c:
            assert c.wait_for_workers(2, timeout=30) == 2
            incs = c.map("inc", range(N_INC))
            adds = c.map("add", incs[:N_ADD], incs[N_ADD:])
            assert c.gather(adds) == [(i + 1) + (i + N_ADD + 1) for i in range(N_ADD)]
            bad = c.submit("div", 1, 0)
            with pytest.raises(rask.RaskError):
                bad.result(timeout=30)
            yield address, base, workers
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def _families(base):
    from prometheus_client.parser import text_string_to_metric_families

    status, ctype, text = _get(base + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fam, **labels):
    for s in fam.samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError(labels)


def test_metrics_count_the_computation(cluster):
    _, base, workers = cluster
    # A snapshot is at most 100 ms old: poll until it has caught up.
    deadline = time.monotonic() + 10
    while True:
        m = _families(base)
        # prometheus_client names a counter family without its _total.
        finished = _value(m["rask_tasks_finished"])
        if finished == N_INC + N_ADD + 0 and _value(m["rask_tasks_erred"]) == 1:
            break
        assert time.monotonic() < deadline, f"finished={finished}"
        time.sleep(0.05)
    assert _value(m["rask_workers"]) == 2
    assert _value(m["rask_clients"]) == 1
    assert m["rask_task_duration_seconds"].type == "histogram"
    h = m["rask_task_duration_seconds"]
    for func, n in (("inc", N_INC), ("add", N_ADD)):
        count = [s for s in h.samples if s.name.endswith("_count") and s.labels["function"] == func]
        assert [s.value for s in count] == [n]
        inf = [s for s in h.samples if s.labels.get("le") == "+Inf" and s.labels["function"] == func]
        assert [s.value for s in inf] == [n]
        buckets = [s.value for s in h.samples if s.name.endswith("_bucket") and s.labels["function"] == func]
        assert buckets == sorted(buckets), "buckets are cumulative"
    # The client still holds its futures: every result is in memory, the
    # failed one erred.
    assert _value(m["rask_tasks"], state="memory") == N_INC + N_ADD
    assert _value(m["rask_tasks"], state="erred") == 1
    assert _value(m["rask_function_tasks"], function="inc", state="memory") == N_INC
    assert _value(m["rask_function_tasks"], function="div", state="erred") == 1
    assert _value(m["rask_scheduler_busy_seconds"]) > 0
    assert 0 <= _value(m["rask_scheduler_busy_ratio"]) <= 1
    assert sorted(s.labels["address"] for s in m["rask_worker_threads"].samples) == sorted(workers)
    assert all(s.value == 2 for s in m["rask_worker_threads"].samples)
    assert _value(m["rask_result_bytes"]) > 0


def test_unknown_paths_are_404_and_the_root_redirects(cluster):
    _, base, _ = cluster
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(base + "/static/nope.js")
    assert e.value.code == 404
    status, ctype, body = _get(base + "/")  # follows the redirect
    assert status == 200 and "rask dashboard" in body and ctype.startswith("text/html")
    status, ctype, body = _get(base + "/static/LICENSE-uPlot.txt")
    assert "MIT License" in body


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def _wait(driver, what, cond, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        v = driver.execute_script(cond)
        if v:
            return v
        assert time.monotonic() < deadline, f"the page never showed {what}"
        time.sleep(0.1)


def _shot(driver, name):
    path = os.path.join(REPO, "target", f"dashboard-{name}.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    driver.save_screenshot(path)


def _console_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_pages_in_a_real_browser(cluster):
    _, base, workers = cluster
    n = N_INC + N_ADD + 1
    driver = _browser()
    try:
        driver.get(base + "/status")
        # Every task in the task stream (the erred one as a black bar), each
        # drawn; every function's progress at 100 %.
        _wait(driver, f"{n} tasks", f"return document.querySelector('#stream-count').dataset.count === '{n}'")
        assert driver.execute_script("return document.querySelector('#stream').dataset.bars") == str(n)
        rows = _wait(
            driver,
            "progress bars",
            "const r = [...document.querySelectorAll('#progress .pct')];"
            "return r.length >= 3 ? r.map(x => [x.parentElement.dataset.function, x.dataset.percent,"
            " x.dataset.done, x.dataset.total]) : null;",
        )
        by = {r[0]: r[1:] for r in rows}
        assert by["inc"] == ["100", str(N_INC), str(N_INC)]
        assert by["add"] == ["100", str(N_ADD), str(N_ADD)]
        assert by["div"] == ["100", "1", "1"]
        finished = driver.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('#durations tbody tr')]"
            ".map(t => [t.dataset.function, t.dataset.finished]))"
        )
        assert finished == {"inc": str(N_INC), "add": str(N_ADD), "div": "0"}
        assert "live" in driver.find_element("id", "link-state").text
        _shot(driver, "status")

        driver.get(base + "/workers")
        shown = _wait(
            driver,
            "both workers",
            "const r = [...document.querySelectorAll('#workers tbody tr')].map(t => t.dataset.worker);"
            "return r.length === 2 ? r : null;",
        )
        assert sorted(shown) == sorted(workers)
        _shot(driver, "workers")

        driver.get(base + "/graph")
        states = _wait(
            driver,
            "the graph",
            "const c = [...document.querySelectorAll('#graph circle.node')].map(x => x.dataset.state);"
            f"return c.length === {n} ? c : null;",
        )
        assert states.count("memory") == N_INC + N_ADD and states.count("erred") == 1
        _shot(driver, "graph")

        driver.get(base + "/events")
        _wait(
            driver,
            "the event log",
            "return [...document.querySelectorAll('#events td')].some(t => t.textContent.includes('registered'))",
        )
        _shot(driver, "events")
        assert _console_errors(driver) == []
    finally:
        driver.quit()


def test_a_performance_report_opens_offline(cluster, tmp_path):
    address, base, _ = cluster
    path = tmp_path / "report.html"
    with rask.Client(address, timeout=30) as c:
        with rask.performance_report(str(path), base + "/status") as r:
            assert c.gather(c.map("inc", range(100, 110))) == list(range(101, 111))
            # Worker memory over the block: wait (deadline poll) until the
            # block holds two heartbeats of each worker.
            deadline = time.monotonic() + 20
            while True:
                html = _get(f"{base}/report?since={r.since}")[2]
                data = json.loads(re.search(r"window\.RASK_REPORT = \[(.*)\];</script>", html).group(1))
                per_worker = collections.Counter(m["worker"] for m in data["memory"])
                if len(per_worker) == 2 and min(per_worker.values()) >= 2:
                    break
                assert time.monotonic() < deadline, f"heartbeats in the block: {per_worker}"
                time.sleep(0.2)
            assert all(m["time"] >= r.since and m["process"] > 0 for m in data["memory"])
    assert r.path == str(path)
    html = path.read_text()
    # Self-contained: nothing to fetch.
    assert "/static/" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<title>rask performance report</title>" in html
    driver = _browser()
    try:
        driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        driver.get(path.as_uri())
        # Only the tasks of the block: the 10 inc.
        _wait(driver, "10 tasks", "return document.querySelector('#stream-count').dataset.count === '10'")
        assert driver.execute_script("return document.querySelector('#stream').dataset.bars") == "10"
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        assert driver.execute_script("return document.querySelectorAll('#workers tbody tr').length") == 2
        assert driver.execute_script("return document.querySelectorAll('#settings tr').length") > 3
        assert "performance report" in driver.find_element("id", "link-state").text
        # Memory over time: a line per worker, a point per heartbeat.
        chart = driver.execute_script(
            "const b = document.querySelector('#memory-chart');"
            "return [b.dataset.workers, Number(b.dataset.points), b.querySelectorAll('canvas').length];"
        )
        assert chart[0] == "2" and chart[1] >= 4 and chart[2] >= 1, chart
        assert driver.execute_script("return document.querySelector('#durations tr[data-function=inc]').dataset.finished") == str(N_INC + 10)
        _shot(driver, "report")
        assert _console_errors(driver) == []
    finally:
        driver.quit()


def _updates(base):
    """The `update` events of /api/updates, parsed, as they come."""
    with urllib.request.urlopen(base + "/api/updates", timeout=20) as r:
        data = []
        for raw in r:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:][1:] if line[5:6] == " " else line[5:])
            elif not line and data:
                yield json.loads("\n".join(data))
                data = []


def test_live_updates_send_each_stream_entry_and_log_line_once(cluster):
    # Last of the tests on `cluster`: it runs one more task there.
    address, base, _ = cluster
    ups = _updates(base)
    first = next(ups)
    # The first update: everything kept (the computation's tasks, the
    # workers registering).
    assert len([e for e in first["stream"] if not e.get("transfer")]) >= N_INC + N_ADD + 1
    assert any("registered" in e["text"] for e in first["events"])
    stream = [e["seq"] for e in first["stream"]]
    events = [e["seq"] for e in first["events"]]
    with rask.Client(address, timeout=30) as c:
        assert c.submit("neg", 5).result(timeout=30) == -5
    # Later updates: only what is new (the task, the client coming and
    # going), each entry and line once, in order.
    deadline = time.monotonic() + 20
    while True:
        u = next(ups)
        stream += [e["seq"] for e in u["stream"]]
        events += [e["seq"] for e in u["events"]]
        texts = [e["text"] for e in u["events"]]
        if u["tasks_finished_total"] > first["tasks_finished_total"] and any("disconnected" in t for t in texts):
            break
        assert time.monotonic() < deadline, "no update showed the new task"
    assert stream == list(range(stream[0], stream[0] + len(stream)))
    assert events == list(range(events[0], events[0] + len(events)))
    assert len(stream) == len(first["stream"]) + 1


def test_the_http_side_has_its_own_thread_and_snapshots_are_timed():
    """The pages, events and /metrics are served by one thread of the
    scheduler's, `rask-dashboard` (none without a dashboard), and /metrics
    counts the time the core spent building snapshots."""

    def threads(pid):
        names = []
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/comm") as f:
                    names.append(f.read().strip())
            except FileNotFoundError:
                pass
        return names

    procs = []
    try:
        on = subprocess.Popen(
            [SCHEDULER, "--port", "0", "--dashboard-address", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        procs.append(on)
        base = _line(on, r"dashboard at (\S+)")[: -len("/status")]
        off = subprocess.Popen(
            [SCHEDULER, "--port", "0", "--no-dashboard"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        procs.append(off)
        _line(off, r"listening on (\S+)")
        # The thread names itself once it runs: poll.
        deadline = time.monotonic() + 10
        while threads(on.pid).count("rask-dashboard") != 1:
            assert time.monotonic() < deadline, threads(on.pid)
            time.sleep(0.02)
        # Served by then (it answers /metrics below); none without a dashboard.
        assert "rask-dashboard" not in threads(off.pid)
        # prometheus_client names the counter family without its _total.
        first = _value(_families(base)["rask_dashboard_snapshot_seconds"])
        deadline = time.monotonic() + 10
        while _value(_families(base)["rask_dashboard_snapshot_seconds"]) <= first:
            assert time.monotonic() < deadline, "snapshots are not timed"
            time.sleep(0.05)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_performance_report_needs_a_dashboard():
    with rask.LocalCluster(n_workers=1, dashboard_address=None) as cl:
        assert cl.dashboard_link is None
        with rask.Client(cl) as c:
            assert c.dashboard_link is None
            with pytest.raises(ValueError, match="has no dashboard"):
                c.performance_report("r.html")
    with pytest.raises(ValueError, match="not a dashboard address"):
        rask.performance_report("r.html", "ftp://x")


def test_an_embedded_scheduler_serves_a_dashboard_by_default(tmp_path):
    """LocalCluster and Scheduler serve the dashboard on loopback unless told
    not to; the link reaches clients through the scheduler's welcome, so a
    client's performance_report needs no address."""
    with rask.LocalCluster(n_workers=1) as cl:
        link = cl.dashboard_link
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", link), link
        base = link[: -len("/status")]
        assert _get(base + "/health")[2] == "ok\n"
        with rask.Client(cl) as c:
            assert c.dashboard_link == link
            path = tmp_path / "embedded.html"
            with c.performance_report(str(path)):
                assert c.gather(c.map("inc", range(7))) == list(range(1, 8))
            html = path.read_text()
            assert "<title>rask performance report</title>" in html
            # The seven tasks of the block, by the scheduler's own count.
            assert '"finished_total":7' in html
    with rask.Scheduler(dashboard_address="127.0.0.1:0") as s:
        assert s.dashboard_link.startswith("http://127.0.0.1:") and ":0/" not in s.dashboard_link
        with rask.Client(s) as c:
            assert c.dashboard_link == s.dashboard_link
    with rask.Scheduler(dashboard_address=None) as s:
        assert s.dashboard_link is None
    with pytest.raises(rask.RaskError, match="dashboard address"):
        rask.Scheduler(dashboard_address="nonsense")


def test_the_workers_page_shows_language_and_cpu():
    """A rask-worker process (Rust) and a Python worker on one scheduler: the
    workers page names each one's language/runtime (from register-worker)
    and shows its process's CPU use (from its heartbeats): the Python
    worker's row shows real CPU use while one of its tasks spins."""
    import threading

    from rask.shipping import RUNTIME

    release = threading.Event()

    def spin():
        x = 0
        while not release.is_set():
            for i in range(20000):
                x = (x * 31 + i) % 1000003
        return x

    procs = []
    driver = None
    with rask.Scheduler(dashboard_address="127.0.0.1:0") as s:
        base = s.dashboard_link[: -len("/status")]
        try:
            w = subprocess.Popen(
                [WORKER, s.address, "--nthreads", "1", "--heartbeat-interval", "0.2"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            procs.append(w)
            rust_address = _line(w, r"serving data on (\S+?),")
            with rask.Worker(s, functions={"spin": spin}, heartbeat=0.2) as pw, rask.Client(s, timeout=30) as c:
                try:
                    assert c.wait_for_workers(2, timeout=30) == 2
                    assert c.gather(c.map("inc", range(5))) == list(range(1, 6))
                    f = c.submit("spin")
                    driver = _browser()
                    driver.get(base + "/workers")
                    rows = _wait(
                        driver,
                        "both workers with their runtime and CPU",
                        "const r = [...document.querySelectorAll('#workers tbody tr')]"
                        ".map(t => [t.dataset.worker, t.dataset.runtime, t.dataset.cpu, t.textContent]);"
                        "return r.length === 2 && r.every(x => x[2] !== '') ? r : null;",
                    )
                    by = {r[0]: r[1:] for r in rows}
                    assert by[rust_address][0] == "rust"
                    assert by[pw.address][0] == RUNTIME
                    for runtime, cpu, text in by.values():
                        assert float(cpu) >= 0 and runtime in text and "%" in text
                    # The spinning task shows as CPU use of the Python worker.
                    busy = _wait(
                        driver,
                        "the Python worker busy",
                        f"const t = document.querySelector('#workers tbody tr[data-worker=\"{pw.address}\"]');"
                        "return t && Number(t.dataset.cpu) > 20 ? Number(t.dataset.cpu) : null;",
                    )
                    assert busy > 20
                    _shot(driver, "workers-runtime-cpu")
                    assert _console_errors(driver) == []
                    release.set()
                    assert f.result(timeout=30) >= 0
                finally:
                    release.set()
        finally:
            release.set()
            if driver is not None:
                driver.quit()
            for p in procs:
                p.kill()
                p.wait()


def test_a_transfer_between_workers_shows_in_the_task_stream(tmp_path):
    """consume(produce()) with produce offered only by one Python worker and
    consume only by another: the value travels worker to worker, and the
    scheduler's task stream has a transfer entry (receiver, sender, bytes)
    beside the two tasks: in /api/snapshot, drawn on the status page (task
    count unchanged) and in a performance report."""

    def produce():
        return b"x" * 100_000

    def consume(b):
        return len(b)

    with rask.Scheduler(dashboard_address="127.0.0.1:0") as s:
        base = s.dashboard_link[: -len("/status")]
        with rask.Worker(s, functions={"produce": produce}) as a, rask.Worker(
            s, functions={"consume": consume}
        ) as b, rask.Client(s, timeout=30) as c:
            assert c.wait_for_workers(2, timeout=30) == 2
            report = tmp_path / "transfer.html"
            with c.performance_report(str(report)):
                assert c.submit("consume", c.submit("produce")).result(timeout=30) == 100_000
                deadline = time.monotonic() + 20
                while True:
                    snap = json.loads(_get(base + "/api/snapshot")[2])
                    ids = {w["address"]: w["id"] for w in snap["workers"]}
                    transfers = [e for e in snap["stream"] if e.get("transfer")]
                    if transfers:
                        break
                    assert time.monotonic() < deadline, "no transfer in the task stream"
                    time.sleep(0.1)
            assert len(transfers) == 1
            t = transfers[0]
            assert (t["worker"], t["from"]) == (ids[b.address], ids[a.address])
            assert t["nbytes"] >= 100_000 and t["stop"] >= t["start"]
            assert sum(1 for e in snap["stream"] if not e.get("transfer")) == 2
            by = {w["address"]: w for w in snap["workers"]}
            assert by[a.address]["sent_bytes"] >= 100_000
            assert by[b.address]["fetched_bytes"] >= 100_000
            assert '"transfer":true' in report.read_text()
            driver = _browser()
            try:
                driver.get(base + "/status")
                got = _wait(
                    driver,
                    "the transfer",
                    "const c = document.querySelector('#stream-count').dataset;"
                    "const s = document.querySelector('#stream').dataset;"
                    "return c.transfers === '1' ? [c.count, s.transferBars, s.bars] : null;",
                )
                assert got == ["2", "1", "2"]
                _shot(driver, "transfer")
                assert _console_errors(driver) == []
            finally:
                driver.quit()
