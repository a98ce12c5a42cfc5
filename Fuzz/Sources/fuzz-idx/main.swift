// libFuzzer target: the IDX reader (gzip or plain, then the header and the payload checks) through
// IDX.load(images:labels:); FuzzSupport.fuzzIDX describes how one input holds the two files.
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

if let dir = seedDirectory() { writeIDXSeeds(to: dir); exit(0) }
exit(runFuzzer { data, size in
    fuzzIDX(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
