import Testing
@testable import ShoalHostProfile

@Test func ShoalHostProfileModuleBuilds() {}
