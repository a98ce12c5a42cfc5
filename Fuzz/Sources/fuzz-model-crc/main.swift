// libFuzzer target: the model loader, with a custom mutator that rewrites the last four bytes as the CRC-32 of
// the others after each of libFuzzer's mutations, so mutated files pass the checksum and reach the header,
// layer and parameter parsing. The corpus and any finding are valid files as they stand.
import CFuzzSupport
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

// libFuzzer finds the custom mutator by this name.
@_cdecl("LLVMFuzzerCustomMutator")
public func customMutator(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    let n = LLVMFuzzerMutate(data, size, maxSize)
    fixCRC(data, n)
    return n
}

if let dir = seedDirectory() { writeModelSeeds(to: dir); exit(0) }
exit(runFuzzer { data, size in
    fuzzModel(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
