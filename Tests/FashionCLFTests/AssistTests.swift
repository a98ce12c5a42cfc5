// fclf_assisted_tasks (CKernels/assist.c): one image's tasks on the calling thread, with a helper thread taking
// tasks from the back when it is awake; every task once, whoever runs it, and single-image predictions with the
// same bits as on one thread.
import CKernels
import Dispatch
import Foundation
@testable import FashionCLF
import Testing

/// Task t adds 1 to runs[t]; with `order`, it also records its rank in the call (one thread only: the rank
/// counter is not atomic).
private struct Counting {
    var runs: UnsafeMutablePointer<Int32>
    var order: UnsafeMutablePointer<Int64>?
    var next: UnsafeMutablePointer<Int64>
    func run(_ t: Int64) {
        runs[Int(t)] += 1
        if let order {
            order[Int(t)] = next.pointee
            next.pointee += 1
        }
    }
}

/// Runs `calls` calls of `tasks` tasks each; returns each task's count of runs and the last call's order.
private func assisted(tasks: Int, calls: Int, ranked: Bool = false) -> (runs: [Int32], order: [Int64]) {
    var runs = [Int32](repeating: 0, count: tasks), order = [Int64](repeating: -1, count: tasks)
    var next: Int64 = 0
    runs.withUnsafeMutableBufferPointer { r in
        order.withUnsafeMutableBufferPointer { o in
            withUnsafeMutablePointer(to: &next) { n in
                var c = Counting(runs: r.baseAddress!, order: ranked ? o.baseAddress! : nil, next: n)
                for _ in 0..<calls {
                    n.pointee = 0
                    withUnsafeMutablePointer(to: &c) { cp in
                        fclf_assisted_tasks(Int64(tasks), { ctx, t in ctx!.assumingMemoryBound(to: Counting.self).pointee.run(t) }, cp)
                    }
                }
            }
        }
    }
    return (runs, order)
}

/// Each concurrent caller's counts, one slot per caller thread.
nonisolated(unsafe) private var assistedRuns = [[Int32]](repeating: [], count: 4)

extension KernelTests {
    @Test("fclf_assisted_tasks runs every task once per call, on 2 threads as on 1")
    func assistedTasksRunEachTaskOnce() {
        let alone = withThreads(1) { assisted(tasks: 37, calls: 10, ranked: true) }
        #expect(alone.runs == [Int32](repeating: 10, count: 37))
        #expect(alone.order == (0..<37).map { Int64($0) }, "alone, the tasks run in order")
        // Two threads: each call's tasks split between the caller (from the front) and the helper (from the
        // back) wherever the two meet; a task run twice or skipped shows in the counts.
        let before = fclf_assist_helped()
        let two = withThreads(2) { assisted(tasks: 37, calls: 20000) }
        #expect(two.runs == [Int32](repeating: 20000, count: 37), "runs per task")
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            #expect(fclf_assist_helped() > before, "the helper thread ran none of 740,000 tasks")
        }
    }

    @Test("fclf_assisted_tasks from several threads at once: each caller's tasks all run once (one job at a time, the others alone)")
    func assistedTasksFromConcurrentCallers() {
        let callers = 4
        let threads = (0..<callers).map { i in
            Thread { withThreads(2) { assistedRuns[i] = assisted(tasks: 11 + i, calls: 1000).runs } }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        for i in 0..<callers {
            #expect(assistedRuns[i] == [Int32](repeating: 1000, count: 11 + i), "caller \(i)")
        }
    }

    @Test("single images predicted with the helper thread have the bits of one thread, and the helper does take tasks")
    func assistedPredictionsKeepTheBits() throws {
        let classifier = Classifier(ModelKind.cnn.build(seed: 5))
        let images = 64
        var rng = SplitMix64(seed: 77)
        let pixels = (0..<images * 784).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 3) }
        var want = [Float](repeating: 0, count: images * 10)
        try withThreads(1) {
            for i in 0..<images {
                try pixels.withUnsafeBufferPointer { px in
                    try want.withUnsafeMutableBufferPointer { try classifier.predict(px.baseAddress! + i * 784, count: 1, probabilities: $0.baseAddress! + i * 10, labels: nil) }
                }
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
        #expect(wrong == 0, "\(wrong) probabilities differ from one thread's over \(rounds) rounds of \(images) images")
        // Only the AVX-512 per-window convolution splits an image, and only with 2 cores to use.
        if fclf_isa_active() == Int32(FCLF_ISA_AVX512F.rawValue) && ProcessInfo.processInfo.activeProcessorCount >= 2 {
            #expect(fclf_assist_helped() - before >= 100, "the helper thread took \(fclf_assist_helped() - before) tasks in \(rounds) rounds")
        }
    }
}
