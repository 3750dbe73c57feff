import Testing
@Test func labPlaceholder() {}
