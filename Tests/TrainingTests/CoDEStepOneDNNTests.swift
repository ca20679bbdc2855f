import Kernels
import ViT
import XCTest

/// The step's PyTorch parity (same tolerances) and thread-count independence again, with
/// oneDNN running every GEMM class of the small ViT whose rows it keeps stable (`--gemm onednn`).
final class CoDEStepOneDNNTests: CoDEStepParityTests {
  override func setUpWithError() throws {
    try super.setUpWithError()
    let (plan, _) = GEMMBackend.decide(Self.smallConfig.gemmShapes, batch: 400, mode: .onednn)
    GEMMBackend.install(plan)
    // oneDNN 2.6's AVX2 kernels keep no class's rows stable (GEMMBackend.probeRanges); there
    // CoDEStepOneDNNImageTests runs the step on oneDNN, one image per call.
    try XCTSkipIf(plan.onednnShapes.isEmpty, "oneDNN keeps the rows of no GEMM class stable on this CPU (oneDNN \(GEMMBackend.onednnISA))")
  }

  override func tearDown() {
    GEMMBackend.install(GEMMPlan())
    super.tearDown()
  }

  func testStepMatchesPyTorchOnOneDNN() throws { try testStepMatchesPyTorch() }

  func testThreadCountDoesNotChangeResultsOnOneDNN() throws { try testThreadCountDoesNotChangeResults() }
}

/// The same again with the classes whose oneDNN rows are unstable on oneDNN one image per call
/// (`--gemm onednn` with the model's image size, as training plans it).
final class CoDEStepOneDNNImageTests: CoDEStepParityTests {
  override func setUpWithError() throws {
    try super.setUpWithError()
    let (plan, _) = GEMMBackend.decide(Self.smallConfig.gemmShapes, batch: 400, imageRows: 40, mode: .onednn)
    GEMMBackend.install(plan)
    XCTAssertFalse(plan.onednnShapes.isEmpty && plan.onednnImageShapes.isEmpty,
                   "oneDNN runs no GEMM class, in one call or per image: no step test runs on oneDNN")
    try XCTSkipIf(plan.onednnImageShapes.isEmpty, "oneDNN keeps the rows of every class of the small ViT stable on this CPU")
  }

  override func tearDown() {
    GEMMBackend.install(GEMMPlan())
    super.tearDown()
  }

  func testStepMatchesPyTorchOnOneDNNPerImage() throws { try testStepMatchesPyTorch() }

  func testThreadCountDoesNotChangeResultsOnOneDNNPerImage() throws { try testThreadCountDoesNotChangeResults() }
}

/// The same again on cde's AVX2 GEMM kernel (`--gemm kernel`) for every GEMM class: PyTorch
/// parity at the same tolerances and thread-count independence. (The small ViT's heads are 16
/// wide, so its attention takes the generic path; heads of width 64 on the kernel give the tiles'
/// bits, `KernelISATests.testAttentionTilesGiveTheSameBits`.)
final class CoDEStepKernelTests: CoDEStepParityTests {
  override func setUpWithError() throws {
    try XCTSkipUnless(GEMMBackend.kernelAvailable, "the CPU lacks AVX2 or FMA")
    try super.setUpWithError()
    let (plan, _) = GEMMBackend.decide(Self.smallConfig.gemmShapes, batch: 400, mode: .kernel)
    GEMMBackend.install(plan)
    XCTAssertEqual(plan.kernelShapes.count, Set(Self.smallConfig.gemmShapes).count)
  }

  override func tearDown() {
    GEMMBackend.install(GEMMPlan())
    super.tearDown()
  }

  func testStepMatchesPyTorchOnTheKernel() throws { try testStepMatchesPyTorch() }

  func testThreadCountDoesNotChangeResultsOnTheKernel() throws { try testThreadCountDoesNotChangeResults() }
}
