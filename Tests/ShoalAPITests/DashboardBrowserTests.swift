import Foundation
import ShoalAPI
import ShoalHostLab
import Testing

/// The dashboard in a real headless Chromium (Debian's `chromium`, installed by scripts/setup.sh):
/// the page is loaded from the coordinator's HTTP port, runs its JavaScript against the API with
/// the token from the URL fragment, and the rendered DOM is dumped and checked.
@Suite(.serialized) struct DashboardBrowserTests {
    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `chromium --headless=new --no-sandbox --disable-gpu --virtual-time-budget=5000 --dump-dom URL`
    /// with a throw-away profile; returns the DOM after the page's polls (virtual time runs
    /// 5 s ahead once the page is idle, so at least one poll has answered).
    /// Waits for chromium off the concurrency pool (the pool has as many threads as cores; a
    /// test blocking one for seconds starves the other tests' tasks).
    func dumpDOM(_ url: String, screenshot: String? = nil) async throws -> String {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<String, any Error>) in
            DispatchQueue.global().async { c.resume(with: Result { try self.dumpDOMBlocking(url, screenshot: screenshot) }) }
        }
    }

    func dumpDOMBlocking(_ url: String, screenshot: String? = nil) throws -> String {
        // On a loaded machine (the whole suite runs in parallel) chromium now and then exits 0
        // without printing the DOM; a fresh profile and another try is what a person would do.
        var last: (any Error)?
        for _ in 0..<3 {
            do { return try dumpDOMOnce(url, screenshot: screenshot) } catch { last = error }
        }
        throw last!
    }

    func dumpDOMOnce(_ url: String, screenshot: String? = nil) throws -> String {
        let profile = NSTemporaryDirectory() + "shoal-chromium-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        // posix_spawn with the signal mask and dispositions reset (HostTool): Foundation's Process
        // started from a test's task passes on a blocked signal mask, with which chromium's
        // helper processes can hang. `timeout` bounds a hung browser.
        // nice: chromium's half-dozen processes must not starve the suite's lab runs beside it.
        let argv = ["timeout", "-k", "5", "90", "nice", "-n", "19", Self.chromium!, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--user-data-dir=\(profile)", "--virtual-time-budget=5000"]
            + (screenshot.map { ["--window-size=1100,1000", "--screenshot=\($0)"] } ?? ["--dump-dom"]) + [url]
        let out = try HostTool.run(argv, checked: false)
        if screenshot != nil { return out.text }
        if out.text.isEmpty {
            throw TestFailure("chromium printed no DOM (status \(out.status)): \(out.stderr.suffix(600))")
        }
        return out.text
    }

    @Test(.enabled(if: chromium != nil, "chromium is not installed (scripts/setup.sh installs it): the dashboard is not checked in a browser"))
    func theDashboardShowsHostsSitesAndWavesWithTheTokenAndNothingWithout() async throws {
        let fleet = try await Fleet()
        defer { fleet.shutdown() }
        try await fleet.publishTwoBundles()
        try await fleet.announceHosts()
        #expect(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "canary-run")).status == 201)

        let base = "http://127.0.0.1:\(fleet.httpPort)/dashboard"
        let dom = try await dumpDOM("\(base)#token=\(fleet.token)")
        for host in ["a1", "a2", "b1"] {
            #expect(dom.contains(#"<td class="host">\#(host)</td>"#), "host \(host) not shown:\n\(dom)")
        }
        #expect(dom.contains(#"class="site-progress" data-site="a""#) && dom.contains(#"class="site-progress" data-site="b""#))
        // a: 1 of 2 chunks for a2 plus 4 of 4 for a1.
        #expect(dom.contains("5 / 6 chunks"))
        #expect(dom.contains(#"data-rollout="canary-run""#))
        #expect(dom.contains(#"<g class="wave" data-wave="1">"#), "no wave in the timeline:\n\(dom)")
        #expect(dom.contains(#"class="throughput-site" data-site="a""#))
        #expect(dom.contains("<polyline"), "no throughput line:\n\(dom)")
        #expect(dom.contains(#"<div id="unauthorized" hidden="">"#), "the unauthorized message shows with the token")
        // The token left the address bar (it is in sessionStorage now).
        #expect(!dom.contains(fleet.token))

        // SHOAL_DASHBOARD_SCREENSHOT=FILE.png keeps a picture of the page as the test saw it.
        if let png = ProcessInfo.processInfo.environment["SHOAL_DASHBOARD_SCREENSHOT"] {
            _ = try await dumpDOM("\(base)#token=\(fleet.token)", screenshot: png)
        }

        // No token, or a wrong one: the page says so and shows no host.
        for url in [base, "\(base)#token=\(String(repeating: "0", count: 64))"] {
            let denied = try await dumpDOM(url)
            #expect(denied.contains(#"<div id="unauthorized">unauthorized: "#), "no unauthorized message for \(url):\n\(denied)")
            #expect(denied.contains(#"<div id="content" hidden="">"#))
            for host in ["a1", "a2", "b1"] { #expect(!denied.contains(">\(host)<"), "\(host) shown without the token") }
            #expect(!denied.contains(#"data-wave="1""#) && !denied.contains("canary-run") && !denied.contains(fleet.staging))
        }
    }
}
