import ArgumentParser
import Foundation
import NIOPosix
import ShoalAgent
import ShoalBundle
import ShoalStorage
import ShoalWire

/// `shoal host convert|reinstall|revert --coordinator …`: the operator side. The order goes to the
/// coordinator, which hands it to the host's `shoal peer` with its jobs; the host's agent runs it
/// and reports its progress in its announces.

/// A bundle argument on the operator side: a .shoal file names its id; anything else is an id.
/// The host must hold the bundle in its packed store (distributed to it, or imported).
func bundleID(ofArgument argument: String) throws -> String {
    guard FileManager.default.fileExists(atPath: argument) else { return argument }
    do { return try BundleFile(path: argument).bundleID.hex } catch { throw CLIError(message: "\(argument): \(error)", code: 2) }
}

func orderHostOperation(kind: OperationKind, options: HostOperationOptions, targetBundle: String?,
                        remote: (coordinator: String, tls: String, host: String)) throws {
    let id = options.id ?? "\(kind)-\(remote.host)-\(ISO8601DateFormatter().string(from: Date()))"
    let order = OperationOrder(
        id: id, kind: kind.rawValue, stagingBundle: try bundleID(ofArgument: options.stagingBundle),
        targetBundle: try targetBundle.map(bundleID(ofArgument:)), healthTimeoutSeconds: options.healthTimeout)
    let context = try loadTLS(remote.tls)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    switch try controlRequest(.orderOperation(host: remote.host, request: order), coordinator: remote.coordinator, tls: context, group: group) {
    case .operation(let status):
        if !options.json { Terminal.note("ordered \(id) (\(kind)) on \(remote.host) through \(remote.coordinator)") }
        guard options.wait else {
            if options.json { print(try operationJSON(status)) } else { printOperationStatus(status) }
            return
        }
        var last = status
        while true {
            if let p = last.progress, p.id == id, p.isFinished { break }
            Thread.sleep(forTimeInterval: 1)
            guard case .operation(let s) = try controlRequest(.operationStatus(host: remote.host), coordinator: remote.coordinator, tls: context, group: group)
            else { throw CLIError(message: "unexpected answer from the coordinator") }
            if !options.json, s.progress?.id == id, s.progress?.step != last.progress?.step {
                Terminal.note("\(remote.host): \(s.progress!.step) (\(s.progress!.status.rawValue))")
            }
            last = s
        }
        if options.json { print(try operationJSON(last)) } else { printOperationStatus(last) }
        switch last.progress?.status {
        case .succeeded?: return
        case .refused?: throw ExitCode(2)
        default: throw ExitCode(1)
        }
    case .refused(let why):
        throw CLIError(message: "refused by the coordinator: \(why)", code: 2)
    default:
        throw CLIError(message: "unexpected answer from the coordinator")
    }
}

func remoteOperationStatus(_ remote: (coordinator: String, tls: String, host: String)) throws -> HostOperationStatus {
    let context = try loadTLS(remote.tls)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    switch try controlRequest(.operationStatus(host: remote.host), coordinator: remote.coordinator, tls: context, group: group) {
    case .operation(let status): return status
    case .refused(let why): throw CLIError(message: "refused by the coordinator: \(why)", code: 2)
    default: throw CLIError(message: "unexpected answer from the coordinator")
    }
}

func operationJSON(_ status: HostOperationStatus) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(status), as: UTF8.self)
}

/// One line: where a host's operation stands (for `shoal status` and `shoal host status`).
func operationSummary(_ status: HostOperationStatus) -> String {
    if status.pending, let order = status.order {
        return "\(order.id) (\(order.kind)) ordered by \(status.orderedBy ?? "?"), not yet taken by the host"
    }
    guard let p = status.progress else { return "no operation" }
    var line = "\(p.id) (\(p.kind)) \(p.status.rawValue)"
    if p.status == .running { line += ", at \(p.step)" }
    if let left = p.hostLeftIn { line += ", host left in \(left)" }
    if let m = p.message { line += ": \(m)" }
    return line
}

func printOperationStatus(_ status: HostOperationStatus) {
    print("host \(status.host): \(operationSummary(status))")
    if let p = status.progress {
        print("state: \(p.status.rawValue)\(p.code.map { " (code \($0))" } ?? "")")
        if !p.log.isEmpty {
            print("last log lines:")
            for line in p.log { print("  \(line)") }
        }
    }
}
