import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Dataset

/// Sampling, determinism across ranks and threads, resume, shard-local mode, bad data.
final class LoaderTests: XCTestCase {
  static let spec = ViewSpec(imageSize: 32, localSize: 16)

  /// 24 small records in 3 shards of 8.
  func synthShards(records: Int = 24, shardSize: Int = 8) throws -> String {
    let dir = temporaryDirectory(self, prefix: "dataset")
    try writeSmallData(dir + "/shards", records: records, shardSize: shardSize)
    return dir
  }

  func config(_ dir: String, G: Int = 8, rank: Int = 0, N: Int = 1, threads: Int = 1, sampling: Sampling = .global,
              log: WarningLog? = nil) -> LoaderConfig {
    var c = LoaderConfig(paths: [dir + "/shards"], seed: 3, globalBatch: G, rank: rank, worldSize: N,
                         spec: LoaderTests.spec, threads: threads, prefetch: 2, sampling: sampling)
    c.indexDirectory = dir + "/idx"
    if let log { c.warn = { log.add($0) } } else { c.warn = { _ in } }
    return c
  }

  /// Per (epoch, step, global slot): record id, generator and a hash of the 8 views' bytes.
  struct Slot: Equatable { var record: Int; var generator: Int; var hash: String }

  func collect(_ loader: D3Loader, steps: Int, rank: Int, into out: inout [String: Slot]) throws {
    for _ in 0..<steps {
      let b = try loader.next()
      let S = b.imageSize, L = b.localSize
      for i in 0..<b.records {
        var bytes: [UInt8] = []
        for v in 0..<6 { bytes += Array(UnsafeRawBufferPointer(start: b.globalView(v, slot: i), count: 3 * S * S * 4)) }
        for v in 0..<2 { bytes += Array(UnsafeRawBufferPointer(start: b.localView(v, slot: i), count: 3 * L * L * 4)) }
        let slot = rank * b.records + i
        out["\(b.epoch)/\(b.step)/\(slot)"] = Slot(record: b.recordIDs[i], generator: b.generators[i], hash: fnv1a64(bytes))
      }
    }
  }

  func testViewsIdenticalFor1_2_4RanksAndAnyThreads() throws {
    let dir = try synthShards()
    var reference: [String: Slot] = [:]
    let one = try D3Loader(config: config(dir), cursor: DataCursor())
    XCTAssertEqual(one.stepsPerEpoch, 3)
    XCTAssertEqual(one.recordCount, 24)
    try collect(one, steps: 4, rank: 0, into: &reference)  // crosses into epoch 1
    one.close()
    XCTAssertEqual(reference.count, 32)
    for (N, threads) in [(2, 2), (4, 3)] {
      var got: [String: Slot] = [:]
      for r in 0..<N {
        let l = try D3Loader(config: config(dir, rank: r, N: N, threads: threads), cursor: DataCursor())
        try collect(l, steps: 4, rank: r, into: &got)
        l.close()
      }
      XCTAssertEqual(got, reference, "N=\(N)")
    }
    // Views are not trivially equal: different records differ.
    XCTAssertGreaterThan(Set(reference.values.map(\.hash)).count, 28)
  }

  /// The batch says which aug_real / aug_fake views T left unchanged: exactly those equal to
  /// their real / fake views bit for bit (what the training step deduplicates).
  func testUnchangedAugmentedFlagsMarkTheBitIdenticalViews() throws {
    let dir = try synthShards()
    let l = try D3Loader(config: config(dir, threads: 2), cursor: DataCursor())
    defer { l.close() }
    var flagged = 0, total = 0
    for _ in 0..<6 {
      let b = try l.next()
      let bytes = 3 * b.imageSize * b.imageSize * 4
      XCTAssertEqual(b.unchangedAugmented.count, 2 * b.records)
      for k in 0..<2 {
        for i in 0..<b.records {
          let equal = memcmp(b.globalView(2 + k, slot: i), b.globalView(k, slot: i), bytes) == 0
          XCTAssertEqual(b.unchangedAugmented[k * b.records + i], equal, "step \(b.step) view \(2 + k) slot \(i)")
          if equal { flagged += 1 }
          total += 1
        }
      }
    }
    // T draws no operation with probability 1/3 (num_transform 2): both kinds occur.
    XCTAssertGreaterThan(flagged, 0)
    XCTAssertLessThan(flagged, total)
  }

  func testEpochOrderIsTheSeededPermutation() throws {
    let dir = try synthShards()
    let l = try D3Loader(config: config(dir, threads: 2), cursor: DataCursor())
    defer { l.close() }
    for epoch in 0..<2 {
      var ids: [Int] = []
      var gens: [Int] = []
      for _ in 0..<3 {
        let b = try l.next()
        XCTAssertEqual(b.epoch, epoch)
        ids += b.recordIDs
        gens += b.generators
      }
      XCTAssertEqual(ids, epochPermutation(count: 24, seed: 3, epoch: epoch).map(Int.init))
      XCTAssertEqual(gens, ids.map { drawGenerator(seed: 3, epoch: epoch, record: $0) })
    }
    XCTAssertEqual(l.cursor, DataCursor(epoch: 2, step: 0, sampling: .global, worldSize: 1))
    XCTAssertEqual(l.stats.batches, 6)
    XCTAssertEqual(l.stats.skippedTotal, 0)
  }

  func testPermutationIsUniformlyShuffled() {
    // Each of 6 elements lands in each position about equally often over many seeds.
    var counts = [[Int]](repeating: [Int](repeating: 0, count: 6), count: 6)
    for seed in 0..<6000 {
      let p = epochPermutation(count: 6, seed: UInt64(seed), epoch: 0)
      XCTAssertEqual(p.sorted(), [0, 1, 2, 3, 4, 5])
      for (pos, v) in p.enumerated() { counts[pos][Int(v)] += 1 }
    }
    for row in counts { for c in row { XCTAssertEqual(Double(c), 1000, accuracy: 150) } }
    XCTAssertNotEqual(epochPermutation(count: 50, seed: 1, epoch: 0), epochPermutation(count: 50, seed: 1, epoch: 1))
  }

  func testResumeFromCursorContinuesTheStreamWhateverN() throws {
    let dir = try synthShards()
    var full: [String: Slot] = [:]
    let a = try D3Loader(config: config(dir, N: 1), cursor: DataCursor())
    try collect(a, steps: 5, rank: 0, into: &full)
    a.close()
    // Stop after 2 steps with N = 2, resume with N = 4 from the saved cursor.
    var got: [String: Slot] = [:]
    var cursor = DataCursor()
    for r in 0..<2 {
      let l = try D3Loader(config: config(dir, rank: r, N: 2), cursor: DataCursor())
      try collect(l, steps: 2, rank: r, into: &got)
      cursor = l.cursor
      l.close()
    }
    XCTAssertEqual(cursor.epoch, 0)
    XCTAssertEqual(cursor.step, 2)
    let data = try JSONEncoder().encode(cursor)
    let restored = try JSONDecoder().decode(DataCursor.self, from: data)
    for r in 0..<4 {
      let l = try D3Loader(config: config(dir, rank: r, N: 4), cursor: restored)
      XCTAssertNil(l.resumeNote)
      try collect(l, steps: 3, rank: r, into: &got)
      l.close()
    }
    XCTAssertEqual(got, full)
  }

  func testShardLocalSampling() throws {
    let dir = try synthShards(records: 32, shardSize: 8)  // 4 shards
    var streams: [[Int]] = []
    for r in 0..<2 {
      let l = try D3Loader(config: config(dir, G: 4, rank: r, N: 2, sampling: .shardLocal), cursor: DataCursor())
      XCTAssertEqual(l.recordCount, 16)
      XCTAssertEqual(l.stepsPerEpoch, 8)
      var ids: [Int] = []
      for _ in 0..<8 { ids += try l.next().recordIDs }
      // Rank r reads shards r and r + 2 only, every record once per epoch.
      XCTAssertEqual(Set(ids.map { $0 >> 32 }), [r, r + 2])
      XCTAssertEqual(ids.count, 16)
      XCTAssertEqual(Set(ids).count, 16)
      streams.append(ids)
      // Exact resume with the same N.
      let again = try D3Loader(config: config(dir, G: 4, rank: r, N: 2, sampling: .shardLocal),
                               cursor: DataCursor(epoch: 0, step: 5, sampling: .shardLocal, worldSize: 2))
      XCTAssertNil(again.resumeNote)
      XCTAssertEqual(try again.next().recordIDs, Array(ids[10..<12]))
      l.close(); again.close()
    }
    // Another N: resumes, but says the stream is not the same.
    let log = WarningLog()
    let other = try D3Loader(config: config(dir, G: 4, rank: 0, N: 4, sampling: .shardLocal, log: log),
                             cursor: DataCursor(epoch: 0, step: 5, sampling: .shardLocal, worldSize: 2))
    XCTAssertNotNil(other.resumeNote)
    XCTAssertTrue(log.all.contains { $0.contains("2 ranks") && $0.contains("4 ranks") })
    other.close()
    // Fewer shards than ranks is one clear error.
    XCTAssertThrowsError(try D3Loader(config: config(dir, G: 8, rank: 0, N: 8, sampling: .shardLocal), cursor: DataCursor())) {
      XCTAssertTrue("\($0)".contains("at least one shard per rank"), "\($0)")
      XCTAssertEqual(($0 as? DatasetError)?.kind, .noRecords)
    }
  }

  /// Node-local disks: every node lists the same four shards and holds only its rank's two
  /// (rank r of 2 reads shards r and r + 2); the records and views are those of a node
  /// that holds all four. A rank's own shard missing, or any with global sampling, is an error.
  func testShardLocalWithNodeLocalDisks() throws {
    let dir = try synthShards(records: 32, shardSize: 8)  // s-000.tar ... s-003.tar
    let fm = FileManager.default
    func paths(_ base: String) -> [String] { [base + "/s-{000..003}.tar"] }
    var all: [String: Slot] = [:], local: [String: Slot] = [:]
    for r in 0..<2 {
      var c = config(dir, G: 4, rank: r, N: 2, sampling: .shardLocal)
      c.paths = paths(dir + "/shards")
      let l = try D3Loader(config: c, cursor: DataCursor())
      try collect(l, steps: 8, rank: r, into: &all)
      l.close()
      // This rank's node: only shards r and r + 2.
      let node = dir + "/node\(r)"
      try fm.createDirectory(atPath: node, withIntermediateDirectories: true)
      for s in [r, r + 2] { try fm.copyItem(atPath: dir + "/shards/s-00\(s).tar", toPath: node + "/s-00\(s).tar") }
      c.paths = paths(node)
      let n = try D3Loader(config: c, cursor: DataCursor())
      XCTAssertEqual(n.recordCount, 16)
      try collect(n, steps: 8, rank: r, into: &local)
      n.close()
    }
    XCTAssertEqual(all.count, 32)  // 8 steps x 2 ranks x B = 2
    XCTAssertEqual(local, all)
    // Rank 1 on rank 0's node: its shard s-001.tar is not there.
    var c = config(dir, G: 4, rank: 1, N: 2, sampling: .shardLocal)
    c.paths = paths(dir + "/node0")
    XCTAssertThrowsError(try D3Loader(config: c, cursor: DataCursor())) {
      XCTAssertTrue("\($0)".contains("rank 1: \(dir)/node0/s-001.tar: no such file"), "\($0)")
      XCTAssertEqual(($0 as? DatasetError)?.kind, .notFound(path: "\(dir)/node0/s-001.tar"))
    }
    c.sampling = .global
    XCTAssertThrowsError(try D3Loader(config: c, cursor: DataCursor())) {
      XCTAssertTrue("\($0)".contains("\(dir)/node0/s-001.tar: no such file or directory"), "\($0)")
      guard case .notFound? = ($0 as? DatasetError)?.kind else { return XCTFail("\($0): not a DatasetError.notFound") }
    }
  }

  func testFolderLayoutTrainsAndLists() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    try writeSmallData(dir + "/test/no_augm", records: 6, shardSize: 4, folders: true)
    let images = try listLabelledImages([dir + "/test"])
    XCTAssertEqual(images.count, 30)
    XCTAssertEqual(images.filter { $0.label == 0 }.count, 6)
    XCTAssertEqual(Set(images.map(\.label)), [0, 1, 2, 3, 4])
    XCTAssertTrue(images[7].source.contains("/gen_0/"))
    // The same records from folders and from shards give the same images.
    try writeSmallData(dir + "/shards", records: 6, shardSize: 4)
    let fromShard = try listLabelledImages([dir + "/shards"], indexDirectory: dir + "/idx")
    XCTAssertEqual(fromShard.count, 30)
    XCTAssertEqual(fromShard.map(\.label), [0, 1, 2, 3, 4] + Array(repeating: [0, 1, 2, 3, 4], count: 5).flatMap { $0 })
    let folderByKey = Dictionary(uniqueKeysWithValues: images.map { ("\($0.key)/\($0.label)", $0) })
    for img in fromShard { XCTAssertEqual(try img.load(), try folderByKey["\(img.key)/\(img.label)"]!.load()) }
    var c = config(dir, G: 2)
    c.paths = [dir + "/test/no_augm"]
    let l = try D3Loader(config: c, cursor: DataCursor())
    XCTAssertEqual(l.recordCount, 6)
    XCTAssertEqual(try l.next().records, 2)
    l.close()
  }
}
