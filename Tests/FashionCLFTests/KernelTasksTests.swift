// fclf_parallel_tasks (CKernels/dispatch.c): whole tasks per thread, each with its kernels serial, and the
// lowest failed task reported whatever order the threads met the failures in.
import CKernels
import Foundation
@testable import FashionCLF
import Testing

/// What each task of the tests below works on: task t normalises its own batch (BatchNorm's training
/// forward, a kernel that splits channels across a team) into its own slice of `out`, counts its runs and
/// fails when `failing` says so, after sleeping `delay` microseconds when it is `slow`.
private struct TaskBench {
    var x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>
    var out: UnsafeMutablePointer<Float>, stats: UnsafeMutablePointer<Float>, runs: UnsafeMutablePointer<Int32>
    var n: Int, c: Int, hw: Int
    var failing: Set<Int>, slow: Int, delay: UInt32

    func run(_ t: Int) -> Int32 {
        runs[t] += 1
        if t == slow { usleep(delay) }
        let size = n * c * hw
        fclf_batchnorm_forward_train(out + t * size, stats + 4 * t * c, stats + (4 * t + 1) * c, stats + (4 * t + 2) * c,
                                     stats + (4 * t + 3) * c, x, gamma, beta, Int64(n), Int64(c), Int64(hw), 0.1, 1e-5, 1)
        return failing.contains(t) ? 1 : 0
    }
}

extension KernelTests {
    private func runTasks(_ tasks: Int, threads: Int, failing: Set<Int> = [], slow: Int = -1) -> (failed: Int64, out: [Float], runs: [Int32], want: [Float]) {
        let (n, c, hw) = (16, 8, 26 * 26)  // 86,528 values: BatchNorm takes threads from 64k
        let size = n * c * hw
        let x = randomArray(size, seed: 120), gamma = randomArray(c, seed: 121).map { 1 + $0 }, beta = randomArray(c, seed: 122)
        var want = [Float](repeating: .nan, count: size), stats = [Float](repeating: 0, count: 4 * c)
        for i in 0..<c { stats[3 * c + i] = 1 }
        stats.withUnsafeMutableBufferPointer { s in
            let p = s.baseAddress!
            withThreads(1) {
                fclf_batchnorm_forward_train(&want, p, p + c, p + 2 * c, p + 3 * c, x, gamma, beta,
                                             Int64(n), Int64(c), Int64(hw), 0.1, 1e-5, 1)
            }
        }
        var out = [Float](repeating: .nan, count: tasks * size), taskStats = [Float](repeating: 0, count: 4 * tasks * c)
        for t in 0..<tasks { for i in 0..<c { taskStats[(4 * t + 3) * c + i] = 1 } }
        var runs = [Int32](repeating: 0, count: tasks)
        let failed = x.withUnsafeBufferPointer { xp in gamma.withUnsafeBufferPointer { gp in beta.withUnsafeBufferPointer { bp in
            out.withUnsafeMutableBufferPointer { op in taskStats.withUnsafeMutableBufferPointer { sp in runs.withUnsafeMutableBufferPointer { rp in
                var bench = TaskBench(x: xp.baseAddress!, gamma: gp.baseAddress!, beta: bp.baseAddress!, out: op.baseAddress!,
                                      stats: sp.baseAddress!, runs: rp.baseAddress!, n: n, c: c, hw: hw, failing: failing,
                                      slow: slow, delay: 30_000)
                return withThreads(threads) {
                    withUnsafeMutablePointer(to: &bench) { b in
                        fclf_parallel_tasks(Int64(tasks), { ctx, t in ctx!.assumingMemoryBound(to: TaskBench.self).pointee.run(Int(t)) }, b)
                    }
                }
            } } }
        } } }
        return (failed, out, runs, want)
    }

    @Test("fclf_parallel_tasks runs every task once, each with all of its kernels' work (1, 2 and 3 threads)", arguments: [1, 2, 3])
    func parallelTasksRunEveryTaskWhole(_ threads: Int) {
        let tasks = 7
        let r = runTasks(tasks, threads: threads)
        #expect(r.failed == -1)
        #expect(r.runs == [Int32](repeating: 1, count: tasks), "\(threads) threads: runs per task")
        let size = r.want.count
        for t in 0..<tasks {
            // A worker whose kernel split its channels by the outer team's thread number left half of them NaN.
            // (Counted, not compared as arrays: a failed == on 86k values has the test library diff them for minutes.)
            let wrong = zip(r.out[t * size..<(t + 1) * size], r.want).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(wrong == 0, "\(threads) threads: task \(t): \(wrong) of \(size) values differ from one thread's")
        }
    }

    @Test("fclf_parallel_tasks reports the lowest failed task, not the first to fail; on one thread the first failure stops the rest")
    func parallelTasksReportTheLowestFailure() {
        // Task 1 sleeps 30 ms before failing, so on a team task 5 fails first.
        for threads in [2, 3] {
            let r = runTasks(8, threads: threads, failing: [1, 5], slow: 1)
            #expect(r.failed == 1, "\(threads) threads")
            #expect(r.runs == [Int32](repeating: 1, count: 8), "\(threads) threads: a failure does not stop the other tasks")
        }
        let one = runTasks(8, threads: 1, failing: [1, 5], slow: 1)
        #expect(one.failed == 1)
        #expect(one.runs == [1, 1, 0, 0, 0, 0, 0, 0])
        #expect(runTasks(0, threads: 2).failed == -1)
    }
}
