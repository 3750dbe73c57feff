/// A partition to grow before an image is written to it (decided by preflight, done later).
public struct PartitionGrowth: Codable, Sendable, Equatable {
    public var entry: BootEntry
    public var toBytes: UInt64

    public init(entry: BootEntry, toBytes: UInt64) {
        self.entry = entry
        self.toBytes = toBytes
    }
}

/// What preflight decided.
public enum PreflightDecision: Sendable, Equatable {
    /// Everything is in place.
    case proceed
    /// Everything is in place, but the image is larger than its partition and fits once the
    /// partition grows into the free space after it.
    case proceedAfterGrowing(PartitionGrowth)
    /// The operation must not start; nothing has been changed.
    case refuse(AgentError)
}

/// The preflight rules: a pure decision from the driver's facts.
///
/// ```swift
/// switch Preflight.decide(request: request, startingIn: .original, facts: facts) {
/// case .proceed, .proceedAfterGrowing: …
/// case .refuse(let why): throw why
/// }
/// ```
public enum Preflight {
    /// The bundles preflight asks the driver about for `request`.
    public static func bundles(for request: OperationRequest) -> [String] {
        var out: [String] = []
        let p = request.parameters
        if request.kind != .maintenance, let s = p.stagingBundle { out.append(s) }
        switch request.kind {
        case .convert, .reinstall: if let t = p.targetBundle, !out.contains(t) { out.append(t) }
        case .maintenance: if let m = p.maintenanceBundle, !out.contains(m) { out.append(m) }
        case .revert, .capture: break
        }
        return out
    }

    /// Decides whether `request` may start on a host running from `start`, given `facts`.
    ///
    /// The checks, in order: the disk layout; every named bundle complete and verified; when
    /// starting in the staging OS, an intact stored profile to carry over; the image fits its
    /// partition, or fits after growing it into the free space that follows it.
    public static func decide(request: OperationRequest, startingIn start: BootEntry, facts: PreflightFacts)
        -> PreflightDecision
    {
        if let problem = facts.layoutProblem { return .refuse(.unexpectedLayout(problem)) }
        for entry in [BootEntry.original, .staging] where facts.partitions[entry] == nil {
            return .refuse(.unexpectedLayout("no \(entry) partition"))
        }
        var sizes: [String: UInt64] = [:]
        for bundle in bundles(for: request) {
            switch facts.bundles[bundle] ?? .missing {
            case .missing: return .refuse(.bundleMissing(bundle: bundle))
            case .incomplete(let have, let total):
                return .refuse(.bundleIncomplete(bundle: bundle, detail: "\(have) of \(total) chunks"))
            case .corrupt(let why): return .refuse(.bundleCorrupt(bundle: bundle, detail: why))
            case .verified(let bytes): sizes[bundle] = bytes
            }
        }
        if start == .staging {
            guard facts.storedProfile != nil else {
                return .refuse(.profileMissing("starting in the staging OS needs the profile stored by an earlier capture"))
            }
            switch facts.storedProfileCheck {
            case .intact: break
            case .missing: return .refuse(.profileMissing("the stored profile is gone"))
            case .corrupt(let why): return .refuse(.profileMissing("the stored profile is corrupt: \(why)"))
            }
        }
        let image: (bundle: String, entry: BootEntry)?
        switch request.kind {
        case .convert, .reinstall, .revert: image = request.imageForOriginalDisk.map { ($0, .original) }
        case .maintenance: image = request.parameters.maintenanceBundle.map { ($0, .maintenance) }
        case .capture: image = nil
        }
        guard let image, let bytes = sizes[image.bundle] else { return .proceed }
        guard let partition = facts.partitions[image.entry] else {
            return .refuse(.unexpectedLayout("no \(image.entry) partition"))
        }
        if bytes <= partition.sizeBytes { return .proceed }
        if bytes <= partition.sizeBytes + partition.growableBytes {
            return .proceedAfterGrowing(PartitionGrowth(entry: image.entry, toBytes: bytes))
        }
        return .refuse(
            .imageTooBig(
                bundle: image.bundle, imageBytes: bytes, partitionBytes: partition.sizeBytes,
                growableBytes: partition.growableBytes))
    }
}
