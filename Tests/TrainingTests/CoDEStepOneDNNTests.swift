import Kernels
import ViT
import XCTest

/// The step's PyTorch parity (same tolerances) and thread-count independence again, with
/// oneDNN running every GEMM class of the small ViT whose rows it keeps stable (`--gemm onednn`).
final class CoDEStepOneDNNTests: CoDEStepParityTests {
  override func setUp() {
    super.setUp()
    let (plan, _) = GEMMBackend.decide(Self.smallConfig.gemmShapes, batch: 400, mode: .onednn)
    XCTAssertFalse(plan.onednnShapes.isEmpty, "oneDNN runs no GEMM class: the tests below would repeat the OpenBLAS ones")
    GEMMBackend.install(plan)
  }

  override func tearDown() {
    GEMMBackend.install(GEMMPlan())
    super.tearDown()
  }

  func testStepMatchesPyTorchOnOneDNN() throws { try testStepMatchesPyTorch() }

  func testThreadCountDoesNotChangeResultsOnOneDNN() throws { try testThreadCountDoesNotChangeResults() }
}
