// fclf_assisted_tasks (CKernels/assist.c): one image's tasks on the calling thread, with a helper thread taking
// tasks from the back when it is awake; every task once, whoever runs it, and single-image predictions with the
// same bits as on one thread.
import CKernels
import Dispatch
import Foundation
@testable import FashionCLF
import Testing

/// Task t adds 1 to runs[t] and notes in onHelper[t] whether a thread other than the caller ran it; with
/// `order`, it also records its rank in the call (one thread only: the rank counter is not atomic).
private struct Counting {
    var runs: UnsafeMutablePointer<Int32>
    var onHelper: UnsafeMutablePointer<UInt8>
    var order: UnsafeMutablePointer<Int64>?
    var next: UnsafeMutablePointer<Int64>
    var caller: pthread_t
    func run(_ t: Int64) {
        runs[Int(t)] += 1
        onHelper[Int(t)] = pthread_equal(pthread_self(), caller) == 0 ? 1 : 0
        if let order {
            order[Int(t)] = next.pointee
            next.pointee += 1
        }
    }
}

/// `calls` calls of `tasks` tasks each: each task's count of runs, the last call's order (with `ranked`), and
/// the calls in which the tasks the helper ran were not a run at the back (it takes from the back, the caller
/// from the front).
private func assisted(tasks: Int, calls: Int, ranked: Bool = false) -> (runs: [Int32], order: [Int64], notAtTheBack: Int) {
    var runs = [Int32](repeating: 0, count: tasks), order = [Int64](repeating: -1, count: tasks)
    var onHelper = [UInt8](repeating: 0, count: tasks)
    var next: Int64 = 0, notAtTheBack = 0
    runs.withUnsafeMutableBufferPointer { r in
        order.withUnsafeMutableBufferPointer { o in
            onHelper.withUnsafeMutableBufferPointer { h in
                withUnsafeMutablePointer(to: &next) { n in
                    var c = Counting(runs: r.baseAddress!, onHelper: h.baseAddress!, order: ranked ? o.baseAddress! : nil,
                                     next: n, caller: pthread_self())
                    for _ in 0..<calls {
                        n.pointee = 0
                        withUnsafeMutablePointer(to: &c) { cp in
                            fclf_assisted_tasks(Int64(tasks), { ctx, t in ctx!.assumingMemoryBound(to: Counting.self).pointee.run(t) }, cp)
                        }
                        let first = h.firstIndex(of: 1) ?? tasks
                        if h[first...].contains(0) { notAtTheBack += 1 }
                    }
                }
            }
        }
    }
    return (runs, order, notAtTheBack)
}

extension KernelTests {
    @Test("fclf_assisted_tasks runs every task once per call, in order alone; on 2 threads the helper takes a run at the back")
    func assistedTasksRunEachTaskOnce() {
        let alone = withThreads(1) { assisted(tasks: 37, calls: 10, ranked: true) }
        #expect(alone.runs == [Int32](repeating: 10, count: 37))
        #expect(alone.order == (0..<37).map { Int64($0) }, "alone, the tasks run in order")
        #expect(alone.notAtTheBack == 0)
        // Two threads: each call's tasks split between the caller (from the front) and the helper (from the
        // back) wherever the two meet; a task run twice or skipped shows in the counts. The helper runs only
        // while awake and free (other tests use it too): calls go on, up to 10 s, until it has taken tasks.
        let before = fclf_assist_helped(), start = Date()
        var calls = 0
        var runs = [Int32](repeating: 0, count: 37), notAtTheBack = 0
        repeat {
            let r = withThreads(2) { assisted(tasks: 37, calls: 2000) }
            for t in 0..<37 { runs[t] += r.runs[t] }
            notAtTheBack += r.notAtTheBack
            calls += 2000
        } while fclf_assist_helped() - before < 1000 && Date().timeIntervalSince(start) < 10
        #expect(runs == [Int32](repeating: Int32(calls), count: 37), "runs per task over \(calls) calls")
        #expect(notAtTheBack == 0, "\(notAtTheBack) of \(calls) calls: the helper's tasks were not the last ones")
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            #expect(fclf_assist_helped() - before >= 1000, "the helper thread ran \(fclf_assist_helped() - before) tasks in \(calls) calls")
        }
    }

    @Test("fclf_assisted_tasks from several threads at once: each caller's tasks all run once (one job at a time, the others alone)")
    func assistedTasksFromConcurrentCallers() {
        let callers = 4, calls = 1000
        // caller i's counts at slot i * 16 (11 + i <= 16 tasks); each thread writes only its own slots
        nonisolated(unsafe) let counts = UnsafeMutableBufferPointer<Int32>.allocate(capacity: callers * 16)
        counts.initialize(repeating: -1)
        defer { counts.deallocate() }
        let threads = (0..<callers).map { i in
            Thread {
                let r = withThreads(2) { assisted(tasks: 11 + i, calls: calls) }
                for t in 0..<(11 + i) { counts[i * 16 + t] = r.runs[t] }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        for i in 0..<callers {
            #expect(Array(counts[(i * 16)..<(i * 16 + 11 + i)]) == [Int32](repeating: Int32(calls), count: 11 + i), "caller \(i)")
        }
    }

    /// The seed CNN's tasks come from its per-window convolution (conv/window_pool.c; the scalar variant: its
    /// GEMM), wide-bn's also from the GEMM of its convolutions without pooling (gemm/driver.c).
    @Test("single images predicted with the helper thread have the bits of one thread, and the helper does take tasks",
          arguments: [ModelKind.cnn, .wideBN])
    func assistedPredictionsKeepTheBits(kind: ModelKind) throws {
        let classifier = Classifier(kind.build(seed: 5))
        let images = 64
        var rng = SplitMix64(seed: 77)
        let pixels = (0..<images * 784).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 3) }
        // The reference: all images in one call on one thread, which takes no helper (more than 4 images) and
        // splits no product, so a task that computes wrong columns cannot be in it.
        var want = [Float](repeating: 0, count: images * 10)
        try withThreads(1) {
            try pixels.withUnsafeBufferPointer { px in
                try want.withUnsafeMutableBufferPointer { try classifier.predict(px.baseAddress!, count: images, probabilities: $0.baseAddress!, labels: nil) }
            }
        }
        // The helper runs only while awake and free; other tests predict at the same time. Keep predicting (up to
        // 10 s) until it has taken tasks, comparing every image.
        let before = fclf_assist_helped(), start = Date()
        var wrong = 0, rounds = 0
        var got = [Float](repeating: 0, count: 10)
        repeat {
            try withThreads(2) {
                for i in 0..<images {
                    try pixels.withUnsafeBufferPointer { px in
                        try got.withUnsafeMutableBufferPointer { try classifier.predict(px.baseAddress! + i * 784, count: 1, probabilities: $0.baseAddress!, labels: nil) }
                    }
                    wrong += zip(got, want[i * 10..<(i + 1) * 10]).filter { $0.bitPattern != $1.bitPattern }.count
                }
            }
            rounds += 1
        } while fclf_assist_helped() - before < 100 && Date().timeIntervalSince(start) < 10
        #expect(wrong == 0, "\(kind): \(wrong) probabilities differ from one thread's over \(rounds) rounds of \(images) images")
        // Every variant splits these models' images, with 2 cores to use.
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            #expect(fclf_assist_helped() - before >= 100, "the helper thread took \(fclf_assist_helped() - before) tasks in \(rounds) rounds")
        }
    }
}
