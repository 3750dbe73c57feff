import Testing
@testable import ShoalAgent

@Test func ShoalAgentModuleBuilds() {}
