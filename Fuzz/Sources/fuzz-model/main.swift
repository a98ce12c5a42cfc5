// libFuzzer target: the model loader (ModelFile.decode, then Classifier) on arbitrary bytes. Nearly every
// mutation fails the CRC-32 check; fuzz-model-crc reaches the parsing behind it.
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

if let dir = seedDirectory() { writeModelSeeds(to: dir); exit(0) }
exit(runFuzzer { data, size in
    fuzzModel(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
