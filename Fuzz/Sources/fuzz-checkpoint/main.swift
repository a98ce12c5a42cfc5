// libFuzzer target: the training checkpoint decoder (Checkpoint.decode, format versions 1 and 2), with a custom
// mutator that rewrites the last four bytes as the CRC-32 of the others after each of libFuzzer's mutations, so
// mutated files pass the checksum and reach the position, counters, order, tensors, history, best epoch and
// weight average. The corpus and any finding are valid files as they stand.
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

if let dir = seedDirectory() { writeCheckpointSeeds(to: dir); exit(0) }
exit(runFuzzer { data, size in
    fuzzCheckpoint(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
