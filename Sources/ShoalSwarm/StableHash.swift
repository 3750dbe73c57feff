/// Hashes that are identical in every process, on every machine and in every build.
///
/// Every peer of a swarm computes the same ``SwarmPlan`` on its own, so the plan may not depend on
/// Swift's `Hasher` (randomly seeded per process) or on dictionary order. These are FNV-1a 64 for
/// names and the SplitMix64 finalizer for mixing; both are fixed forever (changing them would make
/// peers of different versions disagree about who fetches what).
enum StableHash {
    /// FNV-1a 64 of the UTF-8 bytes of `text`.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The SplitMix64 finalizer: a bijection of `UInt64` that spreads every input bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The rendezvous (highest random weight) choice among `candidates` for `chunk`: each candidate
    /// scores `mix(fnv1a(name) ^ mix(salt + chunk))` and the highest wins (the smaller name on a tie).
    /// Removing a candidate only moves the chunks that candidate had won.
    static func rendezvous(_ candidates: [String], chunk: Int, salt: UInt64) -> String? {
        let key = mix(salt &+ UInt64(truncatingIfNeeded: chunk))
        var best: (score: UInt64, name: String)?
        for name in candidates {
            let score = mix(fnv1a(name) ^ key)
            if let current = best, current.score > score || (current.score == score && current.name <= name) {
                continue
            }
            best = (score, name)
        }
        return best?.name
    }
}
