import Foundation
import ShoalCrypto
import ShoalLab
import ShoalTopology

/// The side-by-side run: the same bundle file over the same emulated datacenter with a stock
/// BitTorrent client (aria2c) and tracker (opentracker) from Debian, the way an operator without
/// Shoal would do it. Figures are measured exactly as for Shoal: completion of the last host, the
/// WAN interface counters of every site, the origin's uplink counter, each host's file checked.
struct Aria2Result {
    var completion: Double?
    var bound: Double
    var bundleBytes: UInt64
    var sites: [String: (inBytes: UInt64, outBytes: UInt64)]
    var originEgress: UInt64
    var hosts: [String: (seconds: Double?, ok: Bool, peakRSS: UInt64?)]
    var pieceLength: Int
    var note: String?

    var json: [String: Any] {
        var sitesJSON: [String: Any] = [:]
        for (name, s) in sites {
            sitesJSON[name] = ["wan_in_bytes": s.inBytes, "wan_out_bytes": s.outBytes,
                               "wan_in_copies": Double(s.inBytes) / Double(bundleBytes)]
        }
        var hostsJSON: [String: Any] = [:]
        for (name, h) in hosts {
            hostsJSON[name] = ["seconds": h.seconds ?? NSNull(), "file_ok": h.ok, "peak_rss_bytes": h.peakRSS ?? NSNull()] as [String: Any]
        }
        return [
            "client": "aria2c", "tracker": "opentracker", "piece_bytes": pieceLength,
            "completion_seconds": completion ?? NSNull(), "bound_seconds": bound,
            "ratio_to_bound": completion.map { $0 / bound } ?? NSNull(),
            "origin_egress_bytes": originEgress, "origin_egress_copies": Double(originEgress) / Double(bundleBytes),
            "sites": sitesJSON, "hosts": hostsJSON, "note": note ?? NSNull(),
        ]
    }
}

extension LabRunner {
    /// The tools the comparison needs, or a message naming what is missing.
    static func aria2Tools() throws -> (aria2c: String, tracker: String, mktorrent: String) {
        func find(_ name: String) -> String? {
            for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] where access(dir + "/" + name, X_OK) == 0 { return dir + "/" + name }
            return nil
        }
        guard let a = find("aria2c"), let t = find("opentracker"), let m = find("mktorrent") else {
            throw CLIError(message: "--compare-aria2c needs aria2c, opentracker and mktorrent (apt-get install aria2 opentracker mktorrent; scripts/setup.sh installs them)")
        }
        return (a, t, m)
    }

    /// Distributes `bundlePath` with aria2c over the lab (the Shoal processes must be stopped).
    func runAria2c(bundlePath: String, bound: Double, bundleBytes: UInt64, timeout: Double) throws -> Aria2Result {
        guard let net = lab as? NetworkLab else { throw CLIError(message: "--compare-aria2c needs network namespaces (root)") }
        let tools = try LabRunner.aria2Tools()
        let dir = work + "/aria2"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let origin = topology.origin.name
        let trackerHost = hostPort(lab.originAddress, 6969)
        let name = (bundlePath as NSString).lastPathComponent
        let torrent = dir + "/bundle.torrent"
        // 1 MiB pieces: the size of the lab bundle's chunks, a usual choice for files of this size.
        let pieceLog = 20
        let mk = try lab.spawn(in: origin, executable: tools.mktorrent, arguments: [
            "-a", "http://\(trackerHost)/announce", "-l", "\(pieceLog)", "-o", torrent, bundlePath,
        ], environment: nil, stdout: dir + "/mktorrent.log", stderr: dir + "/mktorrent.log")
        _ = mk.waitUntilExit(timeout: 60)
        guard mk.exitStatus == 0 else { throw CLIError(message: "mktorrent failed (see \(dir)/mktorrent.log)") }
        // Debian's opentracker serves only whitelisted torrents (its README.Debian): list ours.
        let show = try lab.spawn(in: origin, executable: tools.aria2c, arguments: ["--show-files", torrent],
                                 environment: nil, stdout: dir + "/torrent-info.txt", stderr: dir + "/torrent-info.txt")
        _ = show.waitUntilExit(timeout: 30)
        let info = (try? String(contentsOfFile: dir + "/torrent-info.txt", encoding: .utf8)) ?? ""
        guard let hashLine = info.split(separator: "\n").first(where: { $0.hasPrefix("Info Hash: ") }) else {
            throw CLIError(message: "cannot read the torrent's info hash (see \(dir)/torrent-info.txt)")
        }
        try (hashLine.dropFirst("Info Hash: ".count).trimmingCharacters(in: .whitespaces) + "\n")
            .write(toFile: dir + "/whitelist.txt", atomically: true, encoding: .utf8)
        _ = try lab.spawn(in: origin, executable: tools.tracker,
                          arguments: ["-i", lab.originAddress, "-p", "6969", "-P", "6969", "-w", dir + "/whitelist.txt"],
                          environment: nil, stdout: dir + "/opentracker.log", stderr: dir + "/opentracker.log")
        let hook = dir + "/done-hook.sh"
        try "#!/bin/sh\n# aria2c --on-bt-download-complete: GID, number of files, first file's path.\ndate +%s.%N > \"$3.done\"\n"
            .write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        func aria2Arguments(_ downloadDir: String) -> [String] {
            ["--dir=\(downloadDir)", "--seed-ratio=0.0", "--bt-tracker-interval=1", "--enable-dht=false", "--enable-dht6=false",
             "--bt-enable-lpd=false", "--listen-port=6881", "--file-allocation=none", "--summary-interval=0",
             "--console-log-level=warn", "--auto-file-renaming=false", "--allow-overwrite=true", "--bt-max-peers=0",
             "--on-bt-download-complete=\(hook)", torrent]
        }
        // The seed: the bundle file itself, checked against the torrent before it is served.
        let seedDir = dir + "/seed"
        try FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: seedDir + "/" + name)
        do {
            try FileManager.default.linkItem(atPath: bundlePath, toPath: seedDir + "/" + name)
        } catch {
            // Another file system than the work directory's: copy.
            do { try FileManager.default.copyItem(atPath: bundlePath, toPath: seedDir + "/" + name) } catch {
                throw CLIError(message: "cannot copy \(bundlePath) for the aria2c seed: \(error.localizedDescription)")
            }
        }
        let seedName = topology.origin.seeds.first ?? "seed"
        _ = try lab.spawn(in: seedName, executable: tools.aria2c, arguments: ["--check-integrity=true"] + aria2Arguments(seedDir),
                          environment: nil, stdout: dir + "/seed.log", stderr: dir + "/seed.log")
        sleep(2)  // the seed checks its file and announces
        try net.resetCounters()
        let start = Date()
        var procs: [String: LabProcess] = [:]
        for h in topology.hosts {
            let d = dir + "/" + h.name
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            procs[h.name] = try lab.spawn(in: h.name, executable: tools.aria2c, arguments: aria2Arguments(d),
                                          environment: nil, stdout: dir + "/\(h.name).log", stderr: dir + "/\(h.name).log")
        }
        Terminal.note("aria2c: distributing the same \(Format.bytes(bundleBytes)) file to \(topology.hosts.count) hosts (opentracker at the origin)")
        var done: [String: Double] = [:]
        var note: String?
        while done.count < topology.hosts.count {
            for h in topology.hosts where done[h.name] == nil {
                if let text = try? String(contentsOfFile: dir + "/\(h.name)/\(name).done", encoding: .utf8), let t = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    done[h.name] = t - start.timeIntervalSince1970
                }
            }
            if Date().timeIntervalSince(start) > timeout {
                note = "timed out after \(Int(timeout)) s with \(done.count)/\(topology.hosts.count) hosts done"
                break
            }
            if let dead = procs.first(where: { !$0.value.isRunning && done[$0.key] == nil }) {
                note = "aria2c on \(dead.key) exited early (\(dead.value.termination.map(\.description) ?? "?")); see \(dir)/\(dead.key).log"
                break
            }
            usleep(50_000)
        }
        var sites: [String: (inBytes: UInt64, outBytes: UInt64)] = [:]
        for s in topology.sites { sites[s.name] = try net.wanCounters(site: s.name) }
        let originEgress = try net.originEgressBytes
        let expected = try LabRunner.hashFile(bundlePath, length: bundleBytes)
        var hosts: [String: (seconds: Double?, ok: Bool, peakRSS: UInt64?)] = [:]
        for h in topology.hosts {
            let rss = procs[h.name].flatMap { LabRunner.peakRSS(pid: $0.pid) }
            let ok = (try? LabRunner.hashFile(dir + "/\(h.name)/\(name)", length: bundleBytes)) == expected
            hosts[h.name] = (done[h.name], ok, rss)
        }
        for p in lab.processes where p.isRunning { p.terminate(grace: 1) }
        let completion = note == nil ? done.values.max() : nil
        return Aria2Result(completion: completion, bound: bound, bundleBytes: bundleBytes, sites: sites, originEgress: originEgress,
                           hosts: hosts, pieceLength: 1 << pieceLog, note: note)
    }
}

extension LabRunner {
    /// The two distributions, one line per figure.
    static func printSideBySide(shoal: Result, aria2c: Aria2Result) {
        func f(_ v: Double?, _ format: String = "%.3f") -> String { v.map { String(format: format, $0) } ?? "-" }
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print("\nside by side, same lab, same bundle file" + (aria2c.note.map { " (aria2c: \($0))" } ?? ""))
        print(pad("", 34) + pad("shoal", 12) + "aria2c")
        print(pad("completion (s)", 34) + pad(f(shoal.completion, "%.2f"), 12) + f(aria2c.completion, "%.2f"))
        print(pad("time / bound", 34) + pad(f(shoal.completion / shoal.bound.seconds), 12) + f(aria2c.completion.map { $0 / aria2c.bound }))
        print(pad("origin egress (copies)", 34) + pad(f(Double(shoal.originEgress) / Double(shoal.bundleBytes)), 12)
              + f(Double(aria2c.originEgress) / Double(aria2c.bundleBytes)))
        for name in shoal.sites.keys.sorted() {
            let a = aria2c.sites[name].map { Double($0.inBytes) / Double(aria2c.bundleBytes) }
            print(pad("site \(name) WAN in (copies)", 34) + pad(f(Double(shoal.sites[name]!.inBytes) / Double(shoal.bundleBytes)), 12) + f(a))
        }
        let rssS = shoal.hosts.values.compactMap(\.peakRSS).max(), rssA = aria2c.hosts.values.compactMap(\.peakRSS).max()
        print(pad("peak RSS per host (max)", 34) + pad(rssS.map { Format.bytes($0) } ?? "-", 12) + (rssA.map { Format.bytes($0) } ?? "-"))
        print(pad("hosts with the exact bytes", 34) + pad("\(shoal.hosts.values.filter(\.imageOK).count)/\(shoal.hosts.count)", 12)
              + "\(aria2c.hosts.values.filter(\.ok).count)/\(aria2c.hosts.count)")
    }
}
