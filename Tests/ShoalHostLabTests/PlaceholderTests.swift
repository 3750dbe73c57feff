import Testing
@testable import ShoalHostLab

@Test func ShoalHostLabModuleBuilds() {}
