import Testing

@testable import ShoalAgent

struct PlanTests {
    @Test func everyKindHasAPlan() throws {
        for kind in OperationKind.allCases {
            let r = OperationRequest(id: "x", kind: kind, parameters: OperationParameters(stagingBundle: "s", targetBundle: "t", maintenanceBundle: "m", captureName: "c"))
            #expect(try !OperationPlan.steps(for: r, startingIn: .original).isEmpty)
        }
    }
}
