import Foundation
import SafeTensors
import TestSupport
import XCTest
@testable import Evaluation

/// The three classifiers against scikit-learn on the same embeddings
/// (scripts/fixtures/eval_classifiers.py): predictions agree on >= 99% of the test
/// rows and every accuracy is within 0.5 percentage points.
final class ClassifierTests: XCTestCase {
  var probe: EmbeddingFile!
  var test: EmbeddingFile!
  var known: EmbeddingFile!
  var sk: SafeTensorsFile!
  var skJSON: [String: Any]!

  override func setUpWithError() throws {
    probe = try EmbeddingFile(path: fixturePath("eval-probe.safetensors"))
    test = try EmbeddingFile(path: fixturePath("eval-test.safetensors"))
    known = test.subset { $0 >= 0 }
    sk = try SafeTensorsFile(path: fixturePath("eval-sklearn.safetensors"))
    skJSON = try fixtureJSON("eval-sklearn.json")
  }

  /// Agreement of labels with sklearn's, and each metric of `mine` within 0.5 points of sklearn's.
  func check(_ kind: ClassifierKind, _ p: Predictions, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
    let ref = try sk.ints("\(kind.rawValue)_pred").map { Int($0) }
    XCTAssertEqual(ref.count, p.labels.count, file: file, line: line)
    let agree = Double(zip(ref, p.labels).filter { $0 == $1 }.count) / Double(ref.count)
    XCTAssertGreaterThanOrEqual(agree, 0.99, "\(kind) predictions agree with sklearn on \(agree)", file: file, line: line)
    let mine = ClassifierResult.evaluate(name: kind.rawValue, predictions: p, labels: known.labels)
    let refMetrics = try XCTUnwrap((skJSON["metrics"] as? [String: Any])?[kind.rawValue] as? [String: [String: Double]])
    XCTAssertEqual(Set(mine.subsets.map(\.name)), Set(refMetrics.keys), file: file, line: line)
    for (name, m) in mine.subsets {
      let r = try XCTUnwrap(refMetrics[name])
      for (key, v) in [("real_acc", m.realAcc), ("fake_acc", m.fakeAcc), ("acc", m.acc)] {
        XCTAssertEqual(try XCTUnwrap(v), try XCTUnwrap(r[key]), accuracy: 0.005, "\(kind) \(name) \(key)", file: file, line: line)
      }
      XCTAssertEqual(try XCTUnwrap(m.auc), try XCTUnwrap(r["auc"]), accuracy: 0.005, "\(kind) \(name) auc", file: file, line: line)
    }
    return agree
  }

  func testLogisticRegressionMatchesSklearn() throws {
    let c = try LogisticRegressionClassifier.fit(embeddings: probe.embeddings, dimension: probe.dimension, labels: probe.labels)
    let p = c.predict(known.embeddings, count: known.count)
    // Against the authors' call (lbfgs, default tolerance): labels and metrics.
    let agree = try check(.linear, p)
    // Against the exact minimiser of the same objective (Newton in float64 in the
    // fixture script): lbfgs stops short of it on these offset-heavy embeddings, liblinear
    // with the large bias feature reaches it.
    let coef = try fixtureDoubles(sk, "linear_exact_coef")
    let b = try fixtureDoubles(sk, "linear_exact_intercept")[0]
    let scale = coef.map(abs).max()!
    let diff = zip(coef, c.coefficients).map { abs($0 - $1) }.max()!
    XCTAssertLessThan(diff, 1e-4 * scale, "coefficients differ by \(diff)")
    XCTAssertEqual(c.intercept, b, accuracy: 1e-3 * max(1, abs(b)))
    let exactPred = try sk.ints("linear_exact_pred").map { Int($0) }
    let exactAgree = Double(zip(exactPred, p.labels).filter { $0 == $1 }.count) / Double(p.labels.count)
    XCTAssertGreaterThanOrEqual(exactAgree, 0.998)
    print("linear: agreement with sklearn \(agree), with the exact minimiser \(exactAgree); max |coef diff| \(diff) (max |coef| \(scale)), intercept \(c.intercept) vs \(b)")
  }

  func testBalancedWeightsMatter() throws {
    // The fixture probe set is imbalanced (300 real, 600 fake): without balancing the
    // intercept moves towards the fake class, so the option is really exercised.
    let bal = try LogisticRegressionClassifier.fit(embeddings: probe.embeddings, dimension: probe.dimension, labels: probe.labels)
    let unbal = try LogisticRegressionClassifier.fit(embeddings: probe.embeddings, dimension: probe.dimension, labels: probe.labels, balanced: false)
    XCTAssertGreaterThan(unbal.intercept, bal.intercept + 0.05)
  }

  func testKNNMatchesSklearn() throws {
    let c = try KNNClassifier.fit(embeddings: probe.embeddings, dimension: probe.dimension, labels: probe.labels)
    let p = c.predict(known.embeddings, count: known.count)
    let agree = try check(.knn, p)
    let refScore = try fixtureDoubles(sk, "knn_score")
    let scoreDiff = zip(refScore, p.scores).map { abs($0 - $1) }.max()!
    print("knn: agreement \(agree), max score diff \(scoreDiff)")
    XCTAssertLessThan(scoreDiff, 1e-4)
  }

  func testOneClassSVMMatchesSklearn() throws {
    let c = try OneClassSVMClassifier.fit(embeddings: probe.embeddings, dimension: probe.dimension, labels: probe.labels)
    XCTAssertEqual(c.gamma, 1.0 / 192)
    let p = c.predict(known.embeddings, count: known.count)
    let agree = try check(.svm, p)
    let nSV = try XCTUnwrap(skJSON["svm_n_support"] as? Int)
    let rho = try XCTUnwrap(skJSON["svm_rho"] as? Double)
    let refScore = try fixtureDoubles(sk, "svm_score")
    let scoreDiff = zip(refScore, p.scores).map { abs($0 - $1) }.max()!
    print("svm: agreement \(agree), support vectors \(c.supportCount) vs \(nSV), rho \(c.rho) vs \(rho), max score diff \(scoreDiff)")
    XCTAssertEqual(Double(c.supportCount), Double(nSV), accuracy: Double(nSV) * 0.05)
    XCTAssertEqual(c.rho, rho, accuracy: 0.01 * abs(rho) + 1e-6)
  }

  /// The balanced "all" against scikit-learn's (balanced_accuracy_score, recall_score and
  /// roc_auc_score with sample weight 1 / n_class) on sklearn's own predictions and scores,
  /// on the whole labelled test set and on a subset with unequal generator counts
  /// (400 real, 250, 150, 60, 20 of gen_0 ... gen_3) where pooling would differ.
  func testBalancedAllMatchesSklearn() throws {
    let metrics = try XCTUnwrap(skJSON["metrics"] as? [String: [String: [String: Double]]])
    let subset = try XCTUnwrap(skJSON["balanced_subset"] as? [String: Any])
    let rows = try XCTUnwrap(subset["rows"] as? [Int])
    let subMetrics = try XCTUnwrap(subset["metrics"] as? [String: [String: Double]])
    for kind in ClassifierKind.allCases {
      let pred = try sk.ints("\(kind.rawValue)_pred").map { Int($0) }
      let score = try fixtureDoubles(sk, "\(kind.rawValue)_score")
      for (name, idx, ref) in [("all rows", Array(known.labels.indices), metrics[kind.rawValue]?["all"]),
                               ("unequal subset", rows, subMetrics[kind.rawValue])] {
        let ref = try XCTUnwrap(ref)
        let p = Predictions(labels: idx.map { pred[$0] }, scores: idx.map { score[$0] })
        let all = try XCTUnwrap(ClassifierResult.evaluate(name: kind.rawValue, predictions: p, labels: idx.map { known.labels[$0] })["all"])
        for (key, v) in [("real_acc", all.realAcc), ("fake_acc", all.fakeAcc), ("acc", all.acc), ("auc", all.auc)] {
          XCTAssertEqual(try XCTUnwrap(v), try XCTUnwrap(ref[key]), accuracy: 1e-12, "\(kind) \(name) \(key)")
        }
      }
    }
    // The subset really weights generators unequally: pooling its rows gives another accuracy.
    let pred = try sk.ints("knn_pred").map { Int($0) }
    let pooled = Double(rows.filter { (known.labels[$0] > 0 ? 1 : 0) == pred[$0] }.count) / Double(rows.count)
    XCTAssertGreaterThan(abs(pooled - subMetrics["knn"]!["acc"]!), 0.02)
  }

  func testSaveLoadRoundTrip() throws {
    let dir = temporaryDirectory(self, prefix: "eval")
    let (_, fitted) = try runEvaluation(probe: probe, test: test)
    let bundle = DetectorBundle(classifiers: fitted)
    let paths = try bundle.save(to: DetectorBundle.directory(forModel: dir + "/model.safetensors"))
    XCTAssertEqual(paths.map { ($0 as NSString).lastPathComponent }, ["linear.safetensors", "knn.safetensors", "svm.safetensors"])
    let loaded = try DetectorBundle.load(modelPath: dir + "/model.safetensors")
    let a = try bundle.detect(embeddings: known.embeddings, count: known.count)
    let b = try loaded.detect(embeddings: known.embeddings, count: known.count)
    XCTAssertEqual(a.map(\.kind), b.map(\.kind))
    for (x, y) in zip(a, b) {
      XCTAssertEqual(x.predictions.labels, y.predictions.labels)
      XCTAssertEqual(x.predictions.scores, y.predictions.scores)
    }
    XCTAssertThrowsError(try loaded.detect(embeddings: [1, 2, 3], count: 1)) { e in
      XCTAssertTrue("\(e)".contains("dimension 192"), "\(e)")
    }
  }
}
