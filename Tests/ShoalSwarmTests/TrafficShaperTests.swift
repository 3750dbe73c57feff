import ShoalSwarm
import Testing

struct TrafficShaperTests {
    /// Spending as fast as allowed for 10 simulated seconds moves rate × 10 bytes (± one block and the burst).
    @Test(arguments: [1_000_000 as UInt64, 12_500_000, 100_000_000, 1_000_000_000])
    func longRunRateIsTheCap(bitsPerSecond: UInt64) {
        var bucket = TokenBucket(bitsPerSecond: bitsPerSecond, now: 0)
        let block = 256 * 1024
        var now = 0.0, sent = 0
        while now < 10 {
            let wait = bucket.delay(now: now)
            if wait > 0 { now += wait; continue }
            bucket.spend(block, now: now)
            sent += block
        }
        let expected = Double(bitsPerSecond) / 8 * 10
        #expect(abs(Double(sent) - expected) <= Double(block) + bucket.burst + 1)
    }

    @Test func creditDoesNotPileUpWhileIdle() {
        var bucket = TokenBucket(bitsPerSecond: 8_000_000, now: 0)  // 1 MB/s
        #expect(bucket.delay(now: 100) == 0)
        #expect(bucket.tokens == bucket.burst)
        bucket.spend(1_000_000, now: 100)
        #expect(abs(bucket.delay(now: 100) - 0.98) < 0.03)
    }

    @Test func wanBucketsApplyOnlyOffSite() {
        var shaper = TrafficShaper(up: nil, down: nil, wanUp: 8_000_000, wanDown: 8_000_000, now: 0)
        shaper.requested(4_000_000, offSite: true, now: 0)
        #expect(shaper.receiveDelay(offSite: true, now: 0) > 3.9)
        #expect(shaper.receiveDelay(offSite: false, now: 0) == 0)
        shaper.sent(2_000_000, offSite: true, now: 0)
        #expect(shaper.sendDelay(offSite: true, now: 0) > 1.9)
        #expect(shaper.sendDelay(offSite: false, now: 0) == 0)
        #expect(TrafficShaper().isUnlimited && !shaper.isUnlimited)
    }

    @Test func theHostCapCoversBothKindsOfTraffic() {
        var shaper = TrafficShaper(up: 8_000_000, down: nil, wanUp: nil, wanDown: nil, now: 0)
        shaper.sent(1_000_000, offSite: false, now: 0)
        #expect(shaper.sendDelay(offSite: true, now: 0.5) > 0.4)
        #expect(shaper.sendDelay(offSite: true, now: 1.0) == 0)
    }
}
