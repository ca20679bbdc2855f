import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Dataset

/// Tar archives written by Python's tarfile (ustar, GNU, pax) and GNU tar (gnu, posix),
/// and a truncated one, against what Python's tarfile reports
/// (scripts/fixtures/dataset_tar_fixtures.py -> Tests/Fixtures/Dataset/expected.json).
final class TarReaderTests: XCTestCase {
  struct Member: Decodable { var name: String; var offset: Int64; var size: Int64; var fnv1a64: String }
  struct Archive: Decodable {
    var members: [Member]
    var records: [String: [String: [Int]?]]
    var truncated: Bool
    var truncatedMember: String?
  }

  func expected() throws -> [String: Archive] {
    let data = try Data(contentsOf: Fixture.dir.appendingPathComponent("expected.json"))
    return try JSONDecoder().decode([String: Archive].self, from: data)
  }

  func testMembersMatchPythonTarfile() throws {
    let all = try expected()
    XCTAssertEqual(all.count, 6)
    for (name, archive) in all {
      let src = try FileByteSource(path: Fixture.path(name))
      var members: [TarMember] = []
      let issues = try TarScanner(source: src).scan { members.append($0) }
      XCTAssertEqual(members.map(\.name), archive.members.map(\.name), name)
      XCTAssertEqual(members.map(\.dataOffset), archive.members.map(\.offset), name)
      XCTAssertEqual(members.map(\.size), archive.members.map(\.size), name)
      for (m, e) in zip(members, archive.members) {
        XCTAssertEqual(fnv1a64(try src.bytes(at: m.dataOffset, count: Int(m.size))), e.fnv1a64, "\(name) \(m.name)")
      }
      if archive.truncated {
        XCTAssertEqual(issues.count, 1, name)
        XCTAssertEqual(issues.first?.kind, .truncated)
        XCTAssertEqual(issues.first?.member, archive.truncatedMember)
      } else {
        XCTAssertEqual(issues, [], name)
      }
    }
  }

  func testRecordsAndImagesMatchFixtures() throws {
    for (name, archive) in try expected() {
      let shard = try TarShardSource(path: Fixture.path(name), useCache: false)
      XCTAssertEqual(Set((0..<shard.count).map(shard.key)), Set(archive.records.keys), name)
      for r in 0..<shard.count {
        let key = shard.key(r)
        let roles = archive.records[key]!
        for role in RecordRole.allCases {
          XCTAssertEqual(shard.has(r, role), roles[role.tag] != nil, "\(name) \(key) \(role.tag)")
          guard role.isImage, let dims = roles[role.tag] ?? nil else { continue }
          let img = try ImageCodec.decode(try shard.read(r, role), name: shard.memberName(r, role))
          XCTAssertEqual([img.width, img.height], dims, "\(name) \(key) \(role.tag)")
        }
        if name == "gnutar_gnu.tar" && key == "rec004" {
          XCTAssertEqual(shard.staticProblem(r)?.0, .missingMember)
        }
      }
      if archive.truncated {
        let cutKey = splitMemberName(archive.truncatedMember!)!.key
        let r = (0..<shard.count).first { shard.key($0) == cutKey }!
        XCTAssertEqual(shard.staticProblem(r)?.0, .truncatedMember)
        XCTAssertEqual(shard.issues.count, 1)
      }
    }
  }

  func testHeaderNumberFieldsAndChecksum() {
    // Octal with NUL / space terminators, leading spaces, GNU base-256.
    var h = [UInt8](repeating: 0, count: 512)
    for (i, b) in Array("  0001750 ".utf8).enumerated() { h[124 + i] = b }
    XCTAssertEqual(TarHeaderField.number(h, 124, 12), 0o1750)
    h[124] = 0x80
    for i in 125..<136 { h[i] = 0 }
    h[134] = 0x01; h[135] = 0x02
    XCTAssertEqual(TarHeaderField.number(h, 124, 12), 0x0102)
    h[124] = 0xFF
    XCTAssertNil(TarHeaderField.number(h, 124, 12))
    for (i, b) in Array("12x4".utf8).enumerated() { h[124 + i] = b }
    XCTAssertNil(TarHeaderField.number(h, 124, 12))
    // Our writer's headers carry a checksum the scanner accepts; flipping a byte breaks it.
    var w = TarWriter.header(name: Array("a.real.jpg".utf8), size: 5, type: UInt8(ascii: "0"), mtime: 0)
    XCTAssertTrue(TarHeaderField.checksumMatches(w))
    w[3] ^= 1
    XCTAssertFalse(TarHeaderField.checksumMatches(w))
  }

  func testPaxRecords() {
    let rec = Array("23 path=dir/a.real.png\n11 size=42\n".utf8)
    let parsed = TarHeaderField.paxRecords(rec)!
    XCTAssertEqual(parsed.map { $0.0 }, ["path", "size"])
    XCTAssertEqual(parsed.map { $0.1 }, ["dir/a.real.png", "42"])
    XCTAssertNil(TarHeaderField.paxRecords(Array("99 path=x\n".utf8)))
  }

  func testCorruptHeaderIsSkippedToTheNextValidHeader() throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixture.path("py_ustar.tar"))))
    let full = try ShardIndex.build(source: MemoryByteSource(bytes))
    // Corrupt the header of the 3rd member (offset of its data minus 512).
    var offsets: [Int64] = []
    try TarScanner(source: MemoryByteSource(bytes)).scan { offsets.append($0.dataOffset) }
    bytes[Int(offsets[2]) - 512 + 10] ^= 0x55
    var members: [TarMember] = []
    let issues = try TarScanner(source: MemoryByteSource(bytes)).scan { members.append($0) }
    XCTAssertEqual(members.count, offsets.count - 1)
    XCTAssertEqual(members.map(\.dataOffset), offsets.enumerated().filter { $0.offset != 2 }.map(\.element))
    XCTAssertEqual(issues.map(\.kind), [.badHeader])
    XCTAssertEqual(issues[0].resumedAt, offsets[3] - 512)
    let idx = try ShardIndex.build(source: MemoryByteSource(bytes))
    XCTAssertEqual(idx.count, full.count)
    XCTAssertEqual(idx.key(0), full.key(0))
  }

  func testWriterRoundTripWithLongNames() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let path = dir + "/w.tar"
    let w = try TarWriter(path: path)
    let long = String(repeating: "n", count: 150)
    let payloads: [(String, Data)] = [("\(long).real.jpg", Data([1, 2, 3])), ("\(long).caption.txt", Data("hi".utf8)),
                                      ("short.gen_0.png", Data(count: 1000))]
    for (n, d) in payloads { try w.add(name: n, data: d) }
    try w.finish()
    let src = try FileByteSource(path: path)
    var members: [TarMember] = []
    XCTAssertEqual(try TarScanner(source: src).scan { members.append($0) }, [])
    XCTAssertEqual(members.map(\.name), payloads.map(\.0))
    for (m, p) in zip(members, payloads) { XCTAssertEqual(Data(try src.bytes(at: m.dataOffset, count: Int(m.size))), p.1) }
  }

  func testIndexCacheRoundTripAndInvalidation() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let shard = dir + "/s.tar"
    try FileManager.default.copyItem(atPath: Fixture.path("py_pax.tar"), toPath: shard)
    let idxDir = dir + "/idx"
    let built = try ShardIndex.load(shard: FileByteSource(path: shard), indexDirectory: idxDir)
    let cache = ShardIndex.cachePath(forShard: shard, indexDirectory: idxDir)
    XCTAssertTrue(FileManager.default.fileExists(atPath: cache))
    XCTAssertEqual(ShardIndex.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: cache)))), built)
    // A cache whose shard changed (size, mtime) is ignored: plant a wrong index.
    var wrong = built
    wrong.issues = ["planted"]
    try Data(wrong.encoded()).write(to: URL(fileURLWithPath: cache))
    XCTAssertEqual(try ShardIndex.load(shard: FileByteSource(path: shard), indexDirectory: idxDir).issues, ["planted"])
    try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000)], ofItemAtPath: shard)
    XCTAssertEqual(try ShardIndex.load(shard: FileByteSource(path: shard), indexDirectory: idxDir).issues, [])
    // Beside the shard when no index directory is given.
    _ = try ShardIndex.load(shard: FileByteSource(path: shard), indexDirectory: nil)
    XCTAssertTrue(FileManager.default.fileExists(atPath: shard + ".cdeidx"))
    // Garbage and truncated caches decode to nil.
    XCTAssertNil(ShardIndex.decode(Array(built.encoded().dropLast(3))))
    XCTAssertNil(ShardIndex.decode([1, 2, 3]))
  }

  func testGenuineD3Record() throws {
    guard let sample = Fixture.d3Sample else { throw XCTSkip("../shared/d3-sample/elsa_v2-0000.tar not present") }
    let dir = temporaryDirectory(self, prefix: "dataset")
    let shard = try TarShardSource(path: sample, indexDirectory: dir)
    XCTAssertEqual(shard.count, 1)
    XCTAssertEqual(shard.key(0), "elsa_v2__train__1275001022128")
    XCTAssertNil(shard.staticProblem(0))
    var dims: [[Int]] = []
    for role in RecordRole.images {
      let img = try ImageCodec.decode(try shard.read(0, role), name: shard.memberName(0, role))
      dims.append([img.width, img.height])
    }
    XCTAssertEqual(dims, [[225, 225], [256, 256], [512, 512], [640, 360], [640, 360]])
    XCTAssertTrue(shard.has(0, .caption) && shard.has(0, .url))
    XCTAssertEqual(try shard.read(0, .caption).count, 86)
    let info = RecordCatalog(locations: [.shard(sample)], indexDirectory: dir).info(0)
    XCTAssertEqual(info.caption?.utf8.count, 86)
    XCTAssertTrue(info.url?.hasPrefix("http") ?? false, "\(String(describing: info.url))")
    let images = try listLabelledImages([sample], indexDirectory: dir)
    XCTAssertEqual(images.map(\.label), [0, 1, 2, 3, 4])
    XCTAssertEqual(try images[3].load().width, 640)
  }
}
