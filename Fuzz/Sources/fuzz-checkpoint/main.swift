// libFuzzer target: the training checkpoint decoder (Checkpoint.decode, format versions 1 and 2), with the
// CRC-fixing mutator (CRCFixingMutator), so mutated files pass the checksum and reach the position, counters,
// order, tensors, history, best epoch and weight average.
import CRCFixingMutator
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

if let dir = seedDirectory() { writeCheckpointSeeds(to: dir); exit(0) }
exit(runFuzzer { data, size in
    fuzzCheckpoint(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
