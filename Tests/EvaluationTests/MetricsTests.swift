import Foundation
import SafeTensors
import XCTest
@testable import Evaluation

final class MetricsTests: XCTestCase {
  func testAUCWithTiesMatchesSklearn() throws {
    let j = try XCTUnwrap(fixtureJSON("eval-sklearn.json")["auc_ties"] as? [String: Any])
    let labels = try XCTUnwrap(j["labels"] as? [Int])
    let scores = try XCTUnwrap(j["scores"] as? [Double])
    let ref = try XCTUnwrap(j["auc"] as? Double)
    XCTAssertLessThan(Set(scores).count, 15, "the fixture must have many ties")
    XCTAssertEqual(try XCTUnwrap(Metrics.rocAUC(scores: scores, truth: labels)), ref, accuracy: 1e-12)
  }

  func testAUCClosedForms() {
    XCTAssertEqual(Metrics.rocAUC(scores: [0.1, 0.2, 0.8, 0.9], truth: [0, 0, 1, 1]), 1)
    XCTAssertEqual(Metrics.rocAUC(scores: [0.9, 0.8, 0.2, 0.1], truth: [0, 0, 1, 1]), 0)
    XCTAssertEqual(Metrics.rocAUC(scores: [0.5, 0.5, 0.5], truth: [0, 1, 1]), 0.5)
    // One positive above one of two negatives: 1/2; tie with the other: +1/4.
    XCTAssertEqual(Metrics.rocAUC(scores: [0.1, 0.4, 0.4], truth: [0, 0, 1]), 0.75)
    XCTAssertNil(Metrics.rocAUC(scores: [0.1, 0.2], truth: [1, 1]))
  }

  func testAccuracy() {
    XCTAssertEqual(Metrics.accuracy(predicted: [0, 1, 1, 0], truth: [0, 1, 0, 0]), 0.75)
    XCTAssertNil(Metrics.accuracy(predicted: [], truth: []))
  }

  func testPerGeneratorSubsets() {
    // Rows: real x3, gen_0 x2, gen_1 x1, unknown x1.
    let labels: [Int64] = [0, 0, 0, 1, 1, 2, -1]
    let p = Predictions(labels: [0, 0, 1, 1, 0, 1, 1], scores: [0.1, 0.2, 0.9, 0.8, 0.3, 0.7, 0.5])
    let r = ClassifierResult.evaluate(name: "x", predictions: p, labels: labels)
    XCTAssertEqual(r.subsets.map(\.name), ["gen_0", "gen_1", "all"])
    let g0 = r["gen_0"]!
    XCTAssertEqual(g0.realAcc!, 2.0 / 3, accuracy: 1e-15)
    XCTAssertEqual(g0.fakeAcc, 0.5)
    XCTAssertEqual(g0.acc, 0.6)
    XCTAssertEqual(g0.nReal, 3)
    XCTAssertEqual(g0.nFake, 2)
    // "all" is balanced: real 2/3; fake = mean of gen_0's 1/2 and gen_1's 1/1 (not the
    // pooled 2/3); accuracy = (2/3 + 3/4) / 2 (not the pooled 4/6).
    let all = r["all"]!
    XCTAssertEqual(all.realAcc!, 2.0 / 3, accuracy: 1e-15)
    XCTAssertEqual(all.fakeAcc!, 0.75, accuracy: 1e-15)
    XCTAssertEqual(all.acc!, 17.0 / 24, accuracy: 1e-15)
    XCTAssertEqual(all.nReal, 3)
    XCTAssertEqual(all.nFake, 3)
    // AUC: mean of gen_0's (0.8 and 0.3 each above 0.1 and 0.2, below 0.9: 4/6) and
    // gen_1's (0.7 above two of three: 2/3).
    XCTAssertEqual(all.auc!, 2.0 / 3, accuracy: 1e-15)
    // Everything answered "fake": 50 % however many real and generated rows there are.
    let constant = Predictions(labels: Array(repeating: 1, count: 7), scores: Array(repeating: 1, count: 7))
    let allFake = ClassifierResult.evaluate(name: "x", predictions: constant, labels: [0, 1, 1, 2, 2, 2, 2])["all"]!
    XCTAssertEqual(allFake.acc, 0.5)
    XCTAssertEqual(allFake.auc, 0.5)
  }

  func testReportJSONRoundTripAndTable() throws {
    let p = Predictions(labels: [0, 1, 1, 0], scores: [0.1, 0.9, 0.8, 0.4])
    let r = ClassifierResult.evaluate(name: "linear", predictions: p, labels: [0, 1, 4, 0])
    var report = EvaluationReport(classifiers: [r])
    let json = report.json()
    XCTAssertTrue(json.contains("\"gen_3\": {\"real_acc\": 1.0, \"fake_acc\": 1.0, \"acc\": 1.0, \"auc\": 1.0}"), json)
    let back = try EvaluationReport.parse(Data(json.utf8), path: "eval.json")
    XCTAssertEqual(back.classifiers.count, 1)
    XCTAssertEqual(back["linear"]!.subsets.map(\.name), ["gen_0", "gen_3", "all"])
    XCTAssertEqual(back["linear"]!["all"]!.acc, 1)
    // Row counts are not part of the JSON.
    for i in report.classifiers[0].subsets.indices {
      report.classifiers[0].subsets[i].metrics.nReal = 0
      report.classifiers[0].subsets[i].metrics.nFake = 0
    }
    XCTAssertEqual(back, report)
    let table = report.table()
    XCTAssertTrue(table.contains("linear      gen_0 "), table)
    XCTAssertTrue(table.contains("100.00%"), table)
    XCTAssertThrowsError(try EvaluationReport.parse(Data("[1]".utf8), path: "eval.json")) { e in
      XCTAssertEqual("\(e)", "eval.json: not a JSON object")
    }
  }

  func testPCAMatchesSklearn() throws {
    let test = try EmbeddingFile(path: fixturePath("eval-test.safetensors")).subset { $0 >= 0 }
    let sk = try SafeTensorsFile(path: fixturePath("eval-sklearn.safetensors"))
    let pca = PCA(data: test.embeddings, rows: test.count, dimension: test.dimension)
    let refComp = try fixtureDoubles(sk, "pca_components")
    let refVar = try XCTUnwrap(fixtureJSON("eval-sklearn.json")["pca_explained_variance"] as? [Double])
    for r in 0..<2 {
      XCTAssertEqual(pca.explainedVariance[r], refVar[r], accuracy: 1e-4 * refVar[r])
      let a = Array(pca.components[(r * 192)..<((r + 1) * 192)]), b = Array(refComp[(r * 192)..<((r + 1) * 192)])
      let dot = zip(a, b).map(*).reduce(0, +)
      XCTAssertEqual(abs(dot), 1, accuracy: 1e-6, "component \(r)")
    }
    let refMean = try fixtureDoubles(sk, "pca_mean")
    XCTAssertLessThan(zip(refMean, pca.mean).map { abs($0 - $1) }.max()!, 1e-5)
  }

  func testJacobiClosedForm() {
    // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1)/sqrt 2 and (1, -1)/sqrt 2.
    let (values, vectors) = PCA.jacobiEigen([2, 1, 1, 2], 2)
    XCTAssertEqual(values.min()!, 1, accuracy: 1e-14)
    XCTAssertEqual(values.max()!, 3, accuracy: 1e-14)
    let big = values[0] > values[1] ? 0 : 1
    XCTAssertEqual(abs(vectors[0 * 2 + big]), 1 / 2.0.squareRoot(), accuracy: 1e-12)
    XCTAssertEqual(vectors[0 * 2 + big], vectors[1 * 2 + big], accuracy: 1e-12)
  }
}
