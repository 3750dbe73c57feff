import Testing
@Test func swarmPlaceholder() {}
