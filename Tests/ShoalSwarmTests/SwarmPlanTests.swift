@testable import ShoalSwarm
import Testing

struct SwarmPlanTests {
    static let roster: [String: [String]] = [
        "c": ["c3", "c1", "c2", "c4"],  // unsorted on purpose
        "a": ["a1", "a2", "a3", "a4"],
        "b": ["b1", "b2", "b3", "b4"],
        "origin": ["seed"],  // the origin is not a destination site
    ]

    static func plan(chunks: Int = 64, down: Set<String> = []) -> SwarmPlan {
        SwarmPlan(chunkCount: chunks, origin: "origin", sites: roster, down: down)
    }

    @Test func homeSitesGoRoundRobinOverSortedSites() {
        let plan = Self.plan()
        #expect(plan.sites == ["a", "b", "c"])
        #expect(plan.liveSites == ["a", "b", "c"])
        #expect(plan.hosts["c"] == ["c1", "c2", "c3", "c4"])
        #expect((0..<6).map { plan.homeSite($0) } == ["a", "b", "c", "a", "b", "c"])
    }

    @Test func ingressFollowsTheFormula() {
        let plan = Self.plan()
        for (index, site) in plan.sites.enumerated() {
            let hosts = plan.hosts[site]!
            for chunk in 0..<64 {
                #expect(plan.ingressHost(site: site, chunk: chunk) == hosts[(chunk / 3 + index) % 4])
            }
        }
        #expect(plan.ingressHost(site: "origin", chunk: 0) == nil)
        #expect(plan.ingressHost(site: "nowhere", chunk: 0) == nil)
    }

    @Test func wanSourceIsTheOriginForTheHomeSiteElseTheHomeSite() {
        let plan = Self.plan()
        for chunk in 0..<64 {
            let home = plan.homeSite(chunk)!
            for site in plan.sites {
                #expect(plan.wanSource(site: site, chunk: chunk) == (site == home ? .origin : .site(home)))
            }
        }
    }

    /// Home chunks and all chunks are spread over a site's hosts: home chunks within one of each
    /// other, all chunks within one group of `sites.count` consecutive chunks.
    @Test func ingressIsSpreadEvenly() {
        let plan = Self.plan(chunks: 1000)
        for site in plan.sites {
            var all: [String: Int] = [:]
            var home: [String: Int] = [:]
            for chunk in 0..<1000 {
                let host = plan.ingressHost(site: site, chunk: chunk)!
                all[host, default: 0] += 1
                if plan.homeSite(chunk) == site { home[host, default: 0] += 1 }
            }
            #expect(all.count == 4 && home.count == 4)
            #expect(all.values.max()! - all.values.min()! <= plan.sites.count)
            #expect(home.values.max()! - home.values.min()! <= 1)
        }
    }

    @Test func theSameInputsGiveTheSamePlan() {
        var shuffled = Self.roster
        shuffled["a"] = ["a4", "a2", "a2", "a3", "a1"]
        let one = SwarmPlan(chunkCount: 64, origin: "origin", sites: shuffled, down: ["a2"])
        let two = Self.plan(down: ["a2"])
        #expect(one == two)
        for chunk in 0..<64 {
            #expect(one.ingressHost(site: "a", chunk: chunk) == two.ingressHost(site: "a", chunk: chunk))
        }
    }

    /// The stability property: removing a host moves only the chunks it was the ingress host for,
    /// and those go to several live hosts of its site.
    @Test(arguments: ["a1", "b3", "c4"])
    func removingAHostMovesOnlyItsChunks(dead: String) {
        let before = Self.plan(chunks: 300)
        let after = before.removing(hosts: [dead])
        #expect(after.epoch == before.epoch + 1)
        #expect(after.down == [dead])
        let deadSite = before.sites.first { before.hosts[$0]!.contains(dead) }!
        var movedTo: [String: Int] = [:]
        for chunk in 0..<300 {
            #expect(after.homeSite(chunk) == before.homeSite(chunk))
            for site in before.sites {
                let old = before.ingressHost(site: site, chunk: chunk)!
                let new = after.ingressHost(site: site, chunk: chunk)!
                if old == dead {
                    #expect(new != dead && site == deadSite)
                    movedTo[new, default: 0] += 1
                } else {
                    #expect(new == old)
                }
            }
        }
        #expect(movedTo.count == 3)  // spread over all three survivors
        #expect(movedTo.values.min()! >= 10)
    }

    /// Removing hosts one after another, in any order, also keeps every other assignment.
    @Test func removingASecondHostKeepsTheFirstReassignments() {
        let one = Self.plan(chunks: 200).removing(hosts: ["a1"])
        let two = one.removing(hosts: ["a3"])
        #expect(two.epoch == 2)
        for chunk in 0..<200 {
            let old = one.ingressHost(site: "a", chunk: chunk)!
            let new = two.ingressHost(site: "a", chunk: chunk)!
            #expect(old == "a3" ? new != "a3" && new != "a1" : new == old)
        }
        #expect(two == Self.plan(chunks: 200, down: ["a1", "a3"]).removing(hosts: []).removing(hosts: []))
    }

    @Test func removingAWholeSiteReHomesOnlyItsChunks() {
        let before = Self.plan(chunks: 300)
        let after = before.removing(hosts: ["b1", "b2", "b3", "b4"])
        #expect(after.liveSites == ["a", "c"])
        #expect(after.liveHosts(of: "b").isEmpty)
        #expect(after.ingressHost(site: "b", chunk: 0) == nil)
        var reHomed: [String: Int] = [:]
        for chunk in 0..<300 {
            let old = before.homeSite(chunk)!
            let new = after.homeSite(chunk)!
            if old == "b" {
                reHomed[new, default: 0] += 1
            } else {
                #expect(new == old)
            }
            for site in ["a", "c"] {
                #expect(after.ingressHost(site: site, chunk: chunk) == before.ingressHost(site: site, chunk: chunk))
                #expect(after.wanSource(site: site, chunk: chunk) == (new == site ? .origin : .site(new)))
            }
        }
        #expect(Set(reHomed.keys) == ["a", "c"])
        #expect(reHomed.values.min()! >= 30)
    }

    /// The example in `SwarmPlan`'s documentation.
    @Test func documentedExample() {
        let plan = SwarmPlan(chunkCount: 64, origin: "origin", sites: ["fra": ["f1", "f2"], "ams": ["a1", "a2", "a3"]])
        #expect(plan.homeSite(0) == "ams")
        #expect(plan.ingressHost(site: "fra", chunk: 0) == "f2")
        #expect(plan.wanSource(site: "fra", chunk: 0) == .site("ams"))
        #expect(plan.wanSource(site: "ams", chunk: 0) == .origin)
        #expect(plan.removing(hosts: ["a2"]).epoch == 1)
    }

    @Test func noLiveSiteMeansNoSource() {
        let plan = Self.plan(chunks: 4, down: Set(Self.roster.values.joined()))
        #expect(plan.liveSites.isEmpty)
        #expect(plan.homeSite(0) == nil)
        #expect(plan.wanSource(site: "a", chunk: 0) == nil)
    }

    /// The fallback hashes must be the same in every process: golden values catch an accidental
    /// switch to Swift's randomly seeded `Hasher`.
    @Test func stableHashGoldenValues() {
        #expect(StableHash.fnv1a("") == 0xCBF2_9CE4_8422_2325)
        #expect(StableHash.fnv1a("a") == 0xAF63_DC4C_8601_EC8C)
        #expect(StableHash.fnv1a("foobar") == 0x8594_4171_F739_67E8)
        let plan = Self.plan(down: ["a1"])
        let moved = (0..<12).filter { Self.plan().ingressHost(site: "a", chunk: $0) == "a1" }
        #expect(moved == [0, 1, 2])
        #expect(moved.map { plan.ingressHost(site: "a", chunk: $0)! } == Self.goldenFallback)
    }

    static let goldenFallback = ["a4", "a3", "a4"]
}
