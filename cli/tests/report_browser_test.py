#!/usr/bin/env python3
"""memtrack report, opened in a real browser: Debian's headless Chromium, driven through
ChromeDriver's WebDriver protocol (Python's standard library only; nothing downloaded).

For a trace, it writes the report, replays the same trace with `memtrack replay` for the truth,
opens the report offline and checks, in the page as the browser laid it out:
  - every device has a chart whose allocated series is laid out across the plot (its band's box
    and its edge's length and on-screen width are not zero);
  - each peak label says the replayed peak, byte for byte;
  - the refusal markers (with their counts) number the replay's refused allocations;
  - the page fetched nothing (no resource requests: it is self-contained);
  - hovering the peak shows the event at the peak and its exact bytes;
and saves a screenshot under --out, for a person to look at.

    report_browser_test.py --memtrack BIN --case serving|kineto --source DIR --out DIR
        [--shared DIR]

Exit 0 passed, 1 failed, 77 skipped (no browser where one is not required, or no shared trace).
"""
import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def skip(message):
    print(f"SKIPPED: {message}")
    sys.exit(SKIP)


def grouped(value):
    return f"{value:,}"


def replay_truth(memtrack, trace, profile):
    """Peak bytes per device and refused count, from `memtrack replay`'s own output."""
    args = [memtrack, "replay", trace, "--production-only"]
    if profile:
        args += ["--profile", profile]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode not in (0, 1):
        fail(f"memtrack replay exited {run.returncode}: {run.stderr}")
    peaks = {}
    for line in run.stdout.splitlines():
        match = re.match(r"^(gpu:\d+|cpu)\s+(\d+)\s+(\d+)\s+[\d.]+\s+(\d+)\s*$", line)
        if match:
            peaks[match.group(1)] = int(match.group(3))
    refused = re.search(r"outcomes: \d+ ok, (\d+) refused", run.stdout)
    if not peaks or not refused:
        fail(f"could not read memtrack replay's output:\n{run.stdout}")
    return peaks, int(refused.group(1))


class WebDriver:
    """Just enough of the W3C WebDriver protocol."""

    def __init__(self, driver_binary, chromium, profile_dir, height):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        # Chromium writes under $HOME and the XDG folders even with --user-data-dir: give it a
        # writable one of its own (a fresh user's may be missing or read-only)
        env = dict(os.environ, HOME=profile_dir, XDG_CONFIG_HOME=profile_dir,
                   XDG_CACHE_HOME=profile_dir, XDG_RUNTIME_DIR=profile_dir)
        self.log = os.path.join(profile_dir, "chromedriver.log")
        self.process = subprocess.Popen([driver_binary, f"--port={self.port}",
                                         f"--log-path={self.log}", "--verbose"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                if self.call("GET", "/status")["value"].get("ready"):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.close()
            fail("chromedriver did not start")
        # DevTools over a pipe, not a socket: nothing depends on how this machine resolves
        # localhost (a fresh container's may not reach the browser's port)
        args = ["--remote-debugging-pipe", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                f"--user-data-dir={profile_dir}", f"--window-size=1400,{height}"]
        try:
            session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args}}}})
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            self.close()
            fail(f"chromedriver could not start {chromium}: {body[:2000]}\n"
                 f"--- the end of chromedriver's log:\n{self.log_tail()}")
        self.session = session["value"]["sessionId"]

    def log_tail(self, lines=40):
        try:
            with open(self.log, errors="replace") as file:
                return "".join(file.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read().decode())

    def at(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)["value"]

    def script(self, code, *args):
        return self.at("POST", "/execute/sync", {"script": code, "args": list(args)})

    def close(self):
        try:
            if getattr(self, "session", None):
                self.call("DELETE", f"/session/{self.session}")
        except OSError:
            pass
        self.process.terminate()
        self.process.wait(timeout=10)


INSPECT = """
const navigation = performance.getEntriesByType('navigation')[0];
const out = {charts: [], resources: performance.getEntriesByType('resource').length,
             load_ms: navigation ? navigation.duration : -1,
             verdict: (document.getElementById('verdict') || {}).textContent || ''};
document.querySelectorAll('section.device').forEach(function (section) {
  const svg = section.querySelector('svg.chart');
  if (!svg) {  // a device with nothing on it: one line, no chart
    out.charts.push({device: section.dataset.device, id: null, series_width: 0, series_height: 0,
                     on_screen: 0, edge_length: 0, fill: '', markers: 0, refusals: 0,
                     peak_text: null, peak_bytes: null});
    return;
  }
  const series = svg.querySelector('path.series-allocated');
  const box = series ? series.getBBox() : {width: 0, height: 0};
  const edge = svg.querySelector('path.series-edge');
  const screen = edge ? edge.getBoundingClientRect() : {width: 0, height: 0};
  const length = edge ? edge.getTotalLength() : 0;
  let markers = 0, counted = 0;
  svg.querySelectorAll('path.refusal').forEach(function (m) {
    markers += 1; counted += Number(m.dataset.count);
  });
  const label = svg.querySelector('text.peak-label');
  out.charts.push({device: section.dataset.device, id: svg.id,
                   series_width: box.width, series_height: box.height,
                   on_screen: screen.width, edge_length: length,
                   fill: series ? getComputedStyle(series).fill : '',
                   markers: markers, refusals: counted,
                   peak_text: label ? label.textContent : null,
                   peak_bytes: label ? label.dataset.bytes : null});
});
return out;
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--memtrack", required=True)
    parser.add_argument("--case", choices=["serving", "kineto"], required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--shared")
    args = parser.parse_args()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        message = ("Debian's chromium and chromium-driver are not installed "
                   "(./bootstrap.sh installs them)")
        if os.environ.get("MEMTRACK_REQUIRE_BROWSER") == "1":
            fail(message)
        skip(message)

    if args.case == "serving":
        trace = os.path.join(args.source, "traces/recorded/serving-h100-sxm.trace.zst")
        profile = os.path.join(args.source, "cli/tests/data/gpu16.profile")
    else:
        shared = args.shared or os.path.join(args.source, "..", "shared", "traces")
        shared = os.environ.get("MEMTRACK_SHARED_TRACES", shared)
        trace = os.path.join(shared, "kineto", "hta_df_index_resolver.json.gz")
        profile = None
        if not os.path.exists(trace):
            skip(f"the shared Kineto trace is not here ({trace}): its folder is absent")

    os.makedirs(args.out, exist_ok=True)
    html = os.path.join(args.out, f"report-{args.case}.html")
    command = [args.memtrack, "report", trace, "-o", html] + (["--profile", profile] if profile else [])
    made = subprocess.run(command, capture_output=True, text=True)
    if made.returncode != 0:
        fail(f"memtrack report exited {made.returncode}: {made.stderr}")
    peaks, refused = replay_truth(args.memtrack, trace, profile)

    devices = len(peaks)
    with tempfile.TemporaryDirectory() as profile_dir:
        browser = WebDriver(driver, chromium, profile_dir, height=700 + 720 * devices)
        try:
            browser.at("POST", "/url", {"url": "file://" + os.path.abspath(html)})
            seen = browser.script(INSPECT)
            problems = []
            charts = {c["device"]: c for c in seen["charts"]}
            if set(charts) != set(peaks):
                problems.append(f"charts for {sorted(charts)}, devices replayed {sorted(peaks)}")
            for device, peak in peaks.items():
                chart = charts.get(device)
                if not chart:
                    continue
                if peak > 0 and (chart["series_width"] <= 0 or chart["on_screen"] <= 0 or
                                 chart["edge_length"] <= 0):
                    problems.append(f"{device}: the allocated series is not drawn ({chart})")
                if peak > 0:
                    if chart["peak_bytes"] != str(peak):
                        problems.append(f"{device}: peak label data {chart['peak_bytes']}, "
                                        f"replayed peak {peak}")
                    if not chart["peak_text"] or f"peak {grouped(peak)} B" not in chart["peak_text"]:
                        problems.append(f"{device}: peak label says {chart['peak_text']!r}, "
                                        f"replayed peak {grouped(peak)} B")
            markers = sum(c["refusals"] for c in seen["charts"])
            if markers != refused:
                problems.append(f"{markers} refusals marked, the replay refused {refused}")
            if seen["resources"] != 0:
                problems.append(f"the page fetched {seen['resources']} resources")

            # hover the first chart's peak: the info line names its exact bytes
            drawn = [c for c in seen["charts"] if int(c["peak_bytes"] or 0) > 0]
            if not drawn:
                problems.append("no chart has a peak to hover")
            else:
                first = drawn[0]
                marker = browser.at("POST", "/element", {
                    "using": "css selector", "value": f"#{first['id']} circle.peak-marker"})
                browser.at("POST", "/actions", {"actions": [{
                    "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                    "actions": [{"type": "pointerMove", "duration": 0,
                                 "origin": {ELEMENT: marker[ELEMENT]}, "x": 0, "y": 0}]}]})
                info = browser.script(
                    "return document.getElementById(arguments[0]).textContent;",
                    first["id"].replace("chart", "info"))
                if grouped(int(first["peak_bytes"])) not in info:
                    problems.append(f"hovering the peak shows {info!r}")
                print(f"hover at the peak: {info}")

            png = os.path.join(args.out, f"report-{args.case}.png")
            with open(png, "wb") as file:
                file.write(base64.b64decode(browser.at("GET", "/screenshot")))
            print(f"screenshot: {png}")
        finally:
            browser.close()

    for chart in seen["charts"]:
        print(f"{chart['device']}: series {chart['series_width']:.0f}x{chart['series_height']:.0f} "
              f"px, peak label {chart['peak_text']!r}, {chart['refusals']} refusals in "
              f"{chart['markers']} markers")
    print(f"replay: peaks {peaks}, {refused} refused; verdict {seen['verdict']!r}; "
          f"the page loaded in {seen['load_ms']:.0f} ms")
    if problems:
        fail("; ".join(problems))
    print("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
