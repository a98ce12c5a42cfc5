// The kernels' one per-thread scratch mechanism (CKernels/scratch.c): numbered slots, so that the GEMM's
// packing buffers never clobber what a caller keeps in fclf_thread_scratch.
import CKernels
@testable import FashionCLF
import Testing

extension KernelTests {
    @Test("GEMM packing on the calling thread leaves its fclf_thread_scratch buffer alone, every ISA", arguments: kernelISAs)
    func scratchSlots(_ variant: KernelISA) {
        let count = 4096
        guard let buffer = fclf_thread_scratch(Int64(count)) else {
            Issue.record("fclf_thread_scratch returned NULL")
            return
        }
        for i in 0..<count { buffer[i] = Float(i) }
        // Serial, so every pack happens on this thread; large enough to pack (M >= 4) with several K blocks.
        let (m, n, k) = (64, 121, 700)
        let a = randomArray(m * k, seed: 110), b = randomArray(k * n, seed: 111)
        var c = [Float](repeating: 0, count: m * n), expected = c
        fclf_serial_begin()
        fclf_sgemm_isa(variant.raw, 0, 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), b, Int64(n), 0, &c, Int64(n))
        fclf_serial_end()
        fclf_sgemm_ref(0, 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), b, Int64(n), 0, &expected, Int64(n))
        expectClose(c, expected, atol: 1e-5 * Double(k).squareRoot() * 4, rtol: 1e-5, "\(variant): product")
        #expect((0..<count).allSatisfy { buffer[$0] == Float($0) }, "\(variant): the GEMM wrote into the caller's scratch")
        #expect(fclf_thread_scratch(Int64(count / 2)) == buffer, "\(variant): a smaller request reuses the buffer")
    }
}
