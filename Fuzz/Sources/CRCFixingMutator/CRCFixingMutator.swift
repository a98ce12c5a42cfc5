// libFuzzer's custom mutator for inputs whose last four bytes are the CRC-32 of the others (model files and
// training checkpoints): after each of libFuzzer's mutations it rewrites them, so mutated files pass the checksum
// and reach the parser, and the corpus and any finding are valid files as they stand. A target of its own, a
// dependency only of the executables that want it (fuzz-model-crc, fuzz-checkpoint): libFuzzer uses the
// mutator of that name whenever the binary defines one, and fuzz-model fuzzes without it on purpose.
import CFuzzSupport
import FuzzSupport

@_cdecl("LLVMFuzzerCustomMutator")
public func crcFixingMutator(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    let n = LLVMFuzzerMutate(data, size, maxSize)
    fixCRC(data, n)
    return n
}
