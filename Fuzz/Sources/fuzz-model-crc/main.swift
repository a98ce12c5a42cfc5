// libFuzzer target: the model loader, with the CRC-fixing mutator (CRCFixingMutator), so mutated files pass the
// checksum and reach the header, layer and parameter parsing.
import CRCFixingMutator
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

if let dir = seedDirectory() { writeModelSeeds(to: dir); exit(0) }
exit(runFuzzer { data, size in
    fuzzModel(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
