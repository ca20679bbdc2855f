// libFuzzer target for the tar scanner, the record grouping and the shard-index cache
// decoder. Built by scripts/fuzz-tar.sh with `swiftc -sanitize=fuzzer,address` together
// with the Dataset sources it exercises (not part of the package build).
//
// Properties checked on every input (a failure is a crash that libFuzzer reports):
// - scanning never traps, every member reported lies inside the input;
// - every record member is inside the archive and readable;
// - an index survives encode -> decode unchanged;
// - decoding the raw input as an index cache never traps.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  let source = MemoryByteSource(bytes, name: "fuzz.tar")
  var members: [TarMember] = []
  _ = try? TarScanner(source: source).scan { members.append($0) }
  for m in members {
    precondition(m.dataOffset >= 512 && m.size >= 0 && m.dataOffset + m.size <= Int64(size), "member outside input")
  }
  if let idx = try? ShardIndex.build(source: source) {
    for r in 0..<idx.count {
      _ = idx.key(r)
      for role in RecordRole.allCases {
        if let m = idx.member(r, role) {
          precondition(m.offset + Int64(m.size) <= Int64(size), "record member outside input")
          let b = try! source.bytes(at: m.offset, count: m.size)
          precondition(b.count == m.size, "short member read")
        }
      }
    }
    let round = ShardIndex.decode(idx.encoded())
    precondition(round == idx, "index cache round trip differs")
  }
  _ = ShardIndex.decode(bytes)
  return 0
}
