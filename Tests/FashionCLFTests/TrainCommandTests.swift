// fclf-train from the outside: the built executable run as a child process. Ctrl-C (SIGINT) stops after the
// batch with a checkpoint and status 130 and a resumed run writes the same model file as one never stopped;
// command-line mistakes get messages that say how to fix them. Needs `swift build` first (as the C API tests)
// and Fashion-MNIST installed.
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// fclf-train: $FCLF_BIN_DIR/fclf-train, else the newest of SwiftPM's debug and release builds.
private let trainExecutable: String? = {
    if let env = getenv("FCLF_BIN_DIR").map({ String(cString: $0) }) { return env + "/fclf-train" }
    var best: (String, Int)?
    for dir in [".build/debug", ".build/release"] {
        var st = stat()
        let path = packageRoot + "/" + dir + "/fclf-train"
        if stat(path, &st) == 0, best == nil || st.st_mtim.tv_sec > best!.1 { best = (path, st.st_mtim.tv_sec) }
    }
    return best?.0
}()

private let dataDirectory = FashionMNIST.resolveDirectory(nil)
private let haveData = access(dataDirectory + "/train-images-idx3-ubyte.gz", R_OK) == 0

/// Starts fclf-train with `arguments`, its output (stdout and stderr) to `output`, SIGINT handled by default
/// whatever the test runner's threads block or ignore.
private func spawnTrain(_ arguments: [String], output: String, environment: [String: String] = [:]) throws -> pid_t {
    let exe = try #require(trainExecutable, "fclf-train not built: run `swift build` before `swift test` (or set FCLF_BIN_DIR)")
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), interrupt = sigset_t()
    sigemptyset(&none)
    sigemptyset(&interrupt)
    sigaddset(&interrupt, SIGINT)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &interrupt)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + arguments).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    // A fixed creation time (reproducible-builds.org's SOURCE_DATE_EPOCH): two runs' model files may then be
    // compared byte for byte, metadata included.
    var env: [UnsafeMutablePointer<CChar>?] = [strdup("SOURCE_DATE_EPOCH=1764115200")] + environment.map { strdup("\($0.key)=\($0.value)") }
    var e = environ
    while let entry = e.pointee {
        let name = String(cString: entry).prefix { $0 != "=" }
        if name != "SOURCE_DATE_EPOCH" && environment[String(name)] == nil { env.append(strdup(entry)) }
        e += 1
    }
    env.append(nil)
    defer { for v in env { free(v) } }
    var pid = pid_t()
    let rc = posix_spawn(&pid, exe, &actions, &attributes, argv, env)
    try #require(rc == 0, "cannot start \(exe): \(String(cString: strerror(rc)))")
    return pid
}

/// The child's exit status (128 + the signal if one killed it); kills it and returns nil after `timeout` s.
private func waitExit(_ pid: pid_t, timeout: Double = 300) -> Int32? {
    let deadline = monotonicSeconds() + timeout
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { break }
        if r < 0 { return nil }
        if monotonicSeconds() > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            return nil
        }
        usleep(20_000)
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

private func contents(_ path: String) -> String {
    String(decoding: (try? FileIO.read(path, limit: 1 << 24)) ?? [], as: UTF8.self)
}

/// Runs fclf-train to the end: (exit status, output).
private func runTrain(_ arguments: [String], in dir: String, environment: [String: String] = [:]) throws -> (status: Int32?, output: String) {
    let log = dir + "/log-\(UInt32.random(in: 0...UInt32.max)).txt"
    let pid = try spawnTrain(arguments, output: log, environment: environment)
    let status = waitExit(pid)
    return (status, contents(log))
}

private func entries(_ dir: String) -> [String] { ((try? TrainingRun.directoryEntries(dir)) ?? []).sorted() }

/// Waits until `dir` holds a checkpoint (or the child ends, or 120 s pass).
private func waitForCheckpoint(_ dir: String, child pid: pid_t) -> Bool {
    let deadline = monotonicSeconds() + 120
    while monotonicSeconds() < deadline {
        if entries(dir).contains(where: { $0.hasSuffix(".fclfckpt") }) { return true }
        if kill(pid, 0) != 0 { return false }
        usleep(10_000)
    }
    return false
}

@Suite("fclf-train (the executable)", .enabled(if: haveData, "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"))
struct TrainCommandTests {
    /// A small CNN run: 1,600 training images, batches of 16, 2 epochs (200 steps).
    let small = ["--model", "cnn", "--epochs", "2", "--limit-train", "2000", "--batch-size", "16", "--seed", "3",
                 "--threads", "2", "--no-report", "--data", dataDirectory]

    @Test("Ctrl-C: the batch finishes, a checkpoint is written, no temporary files, status 130; --resume ends with the uninterrupted run's model bytes")
    func sigintThenResume() throws {
        let dir = temporaryDirectory(), checkpoints = dir + "/ck"
        let plain = try runTrain(small + ["--out", dir + "/a.fclf"], in: dir)
        #expect(plain.status == 0, "\(plain.output)")

        let args = small + ["--checkpoint-dir", checkpoints, "--checkpoint-every", "5", "--out", dir + "/b.fclf"]
        let pid = try spawnTrain(args, output: dir + "/interrupted.txt")
        let started = waitForCheckpoint(checkpoints, child: pid)
        kill(pid, SIGINT)
        let status = waitExit(pid)
        let output = contents(dir + "/interrupted.txt")
        try #require(started && status == 130, "status \(String(describing: status)) (a checkpoint seen: \(started)):\n\(output)")
        #expect(output.contains("fclf-train: interrupted at epoch "), "\(output)")
        #expect(output.contains("written; continue with the same flags and --resume"), "\(output)")
        let files = entries(checkpoints)
        #expect(!files.isEmpty && files.count <= 2 && files.allSatisfy { $0.hasPrefix("ckpt-") && $0.hasSuffix(".fclfckpt") }, "\(files)")
        #expect(!entries(dir).contains { $0.contains(".tmp.") } && !files.contains { $0.contains(".tmp.") })
        #expect(access(dir + "/b.fclf", F_OK) != 0, "an interrupted run wrote its model")

        let resumed = try runTrain(args + ["--resume"], in: dir)
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("resumed from \(checkpoints)/ckpt-"))
        let a = try FileIO.read(dir + "/a.fclf", limit: 1 << 24), b = try FileIO.read(dir + "/b.fclf", limit: 1 << 24)
        let same = a == b
        #expect(same, "the resumed run's model file differs from the uninterrupted run's")
        // Metadata included: the command without outputs and checkpoints, the fixed creation time.
        let model = try ModelFile.decode(b, path: "b.fclf")
        #expect(model.metadata["created"] == .string("2025-11-26T00:00:00Z"))
        let command = "fclf-train --model cnn --epochs 2 --limit-train 2000 --batch-size 16 --seed 3 --data \(dataDirectory)"
        #expect(model.metadata["command"] == .string(command))
    }

    @Test("a second Ctrl-C during a batch exits at once with status 130 and leaves no temporary file")
    func secondSigint() throws {
        let dir = temporaryDirectory(), checkpoints = dir + "/ck"
        // Batches of 1,000 images: the second SIGINT, 50 ms after the first, arrives while a batch is running.
        let args = ["--model", "cnn", "--epochs", "50", "--limit-train", "6000", "--batch-size", "1000", "--threads", "2",
                    "--no-report", "--data", dataDirectory, "--checkpoint-dir", checkpoints, "--checkpoint-every", "1"]
        let pid = try spawnTrain(args, output: dir + "/log.txt")
        let started = waitForCheckpoint(checkpoints, child: pid)
        kill(pid, SIGINT)
        usleep(50_000)
        kill(pid, SIGINT)
        let status = waitExit(pid, timeout: 60)
        let output = contents(dir + "/log.txt")
        #expect(started && status == 130, "status \(String(describing: status)):\n\(output)")
        #expect(output.contains("fclf-train: interrupted again: exiting now"), "\(output)")
        #expect(!entries(checkpoints).contains { $0.contains(".tmp.") }, "\(entries(checkpoints))")
    }

    @Test("command-line mistakes: --epochs -3, --eval with --report, --resume without --checkpoint-dir, --compare --model (status 64, the fix named)")
    func usageErrors() throws {
        let dir = temporaryDirectory()
        let cases: [([String], String)] = [
            (["--epochs", "-3"], "--epochs must be at least 1 (got -3)"),
            (["--epochs=-3"], "--epochs must be at least 1 (got -3)"),
            (["--limit-train", "-5"], "--limit-train must be at least 1 (got -5)"),
            (["--eval", "m.fclf", "--report", dir], "--eval writes no report"),
            (["--resume"], "--resume and --checkpoint-every need --checkpoint-dir DIR"),
            (["--checkpoint-dir", dir, "--checkpoint-every", "0"], "--checkpoint-every must be at least 1 (got 0)"),
            (["--compare", "--model", "cnn"], "--compare trains both the cnn and the mlp; drop --model"),
            (["--batch-size", "0"], "--batch-size must be in 1...65536 (got 0)"),
            (["--lr", "0"], "--lr must be a positive finite number (got 0.0)"),
            (["--lr", "nan"], "--lr must be a positive finite number (got nan)"),
            (["--momentum", "1"], "--momentum must be in [0, 1) (got 1.0)"),
            (["--nesterov"], "--nesterov needs --optimizer sgd and a momentum above 0"),
            (["--weight-decay", "1"], "--weight-decay must be in [0, 1) (got 1.0)"),
            (["--warmup-epochs", "20", "--epochs", "2"], "--warmup-epochs must be in 0...--epochs (got 20.0)"),
            (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1) (got 1.0)"),
            (["--clean-epochs", "1"], "--clean-epochs needs augmentation: add --augment photo"),
            (["--preset", "fast", "--clean-epochs", "6"], "--clean-epochs must be in 0...5, below --epochs 6 (got 6)"),
            (["--preset", "fast", "--epochs", "2"], "--preset fast trains its last 2 epochs without augmentation, all of the 2 asked for; give more --epochs or a smaller --clean-epochs"),
            (["--erase-p", "0.5"], "--erase-p needs augmentation: add --augment photo"),
            (["--preset", "fast", "--erase-p", "2"], "--erase-p must be in [0, 1] (got 2.0)"),
            (["--val-split", "1"], "--val-split must be in [0, 1) (got 1.0)"),
            (["--threads", "0"], "--threads must be in 1...4096 (got 0)"),
            (["--keep-best", "--val-split", "0"], "--keep-best and --calibrate work on the validation split"),
            (["--temperature", "0"], "--temperature must be in 0.05...20, the range calibration fits in (got 0.0)"),
            (["--preset", "fast", "--val-split", "0.2", "--temperature", "1.3"], "drop one of them (--preset fast calibrates with a validation split: add --no-calibrate)"),
            (["--temperature", "1.3", "--no-temperature"], "--temperature and --no-temperature contradict each other"),
            // fast and best store a given temperature and have no split: an explicit --calibrate asks for one, and
            // it clears the preset's temperature instead of clashing with it.
            (["--preset", "best", "--calibrate"], "--keep-best and --calibrate work on the validation split"),
            (["--preset", "best", "--keep-best"], "--keep-best and --calibrate work on the validation split"),
            (["--preset", "fast", "--calibrate"], "--keep-best and --calibrate work on the validation split"),
            (["--average-epochs", "-1"], "--average-epochs must be in 0...15, at most --epochs 15 (got -1)"),
            (["--epochs", "2", "--average-epochs", "3"], "--average-epochs must be in 0...2, at most --epochs 2 (got 3)"),
            (["--average-rate", "0.2"], "--average-rate needs --average-epochs N with N in 1...14, below --epochs 15"),
            (["--average-epochs", "2", "--average-rate", "1.5"], "--average-rate must be in (0, 1], a fraction of --lr (got 1.5)"),
            (["--epochs", "2", "--average-epochs", "2", "--average-rate", "0.2"], "--average-rate needs --average-epochs N with N in 1...1, below --epochs 2"),
            (["--epochs", "4", "--average-epochs", "2", "--average-rate", "0.2", "--warmup-epochs", "2"], "--warmup-epochs 2.0 reaches into the 2 epochs --average-rate holds; warm up over fewer than 2 epochs"),
            (["--keep-best", "--average-epochs", "1"], "--keep-best keeps one epoch and --average-epochs averages the last 1; drop one of them"),
            (["--model", "resnet"], "The value 'resnet' is invalid for '--model <model>'"),
        ]
        for (args, message) in cases {
            let r = try runTrain(args, in: dir)
            #expect(r.status == 64 && r.output.contains(message), "\(args): status \(String(describing: r.status)):\n\(r.output)")
        }
        // Both flags typed: no hint about the preset.
        let both = try runTrain(["--preset", "best", "--calibrate", "--temperature", "1.3"], in: dir)
        #expect(both.status == 64 && both.output.contains("drop one of them") && !both.output.contains("(--preset"), "\(both.output)")
    }

    @Test("fast's and best's stored temperatures stay with their own networks and no split: a split fits one and keeps the best epoch, another network stores none",
          arguments: ["fast", "best"])
    func presetTemperatureFollowsTheRecipe(_ preset: String) throws {
        let dir = temporaryDirectory()
        let base = ["--preset", preset, "--epochs", "1", "--clean-epochs", "0", "--limit-train", "300", "--no-report", "--data", dataDirectory]
        let own = try runTrain(base, in: dir)
        let stored = preset == "fast" ? "1.085" : "1.324"
        #expect(own.status == 0 && own.output.contains("calibration: temperature \(stored) given, not fitted"), "\(own.output)")
        let split = try runTrain(base + ["--model", "mlp", "--val-split", "0.2"], in: dir)
        #expect(split.status == 0 && split.output.contains("best epoch kept, calibrated") && split.output.contains("fitted on the validation split"), "\(split.output)")
        let other = try runTrain(base + ["--model", "mlp"], in: dir)
        #expect(other.status == 0 && !other.output.contains("calibration:") && !other.output.contains("temperature"), "\(other.output)")
        let none = try runTrain(base + ["--no-temperature"], in: dir)
        #expect(none.status == 0 && !none.output.contains("calibration:"), "\(none.output)")
    }

    @Test("bad files and folders: status 1 with the file and the fix named, before any training")
    func badFilesAndFolders() throws {
        let dir = temporaryDirectory()
        let cases: [([String], String)] = [
            (["--data", dir + "/none"], "Fashion-MNIST file not found; install it with `apt-get install dataset-fashion-mnist`"),
            (["--eval", "/dev/zero"], "/dev/zero: not a regular file"),
            (["--eval", dir], "is a folder, not a file"),
            (["--out", dir + "/no/such/m.fclf"], "--out: the folder \(dir)/no/such does not exist"),
            (["--metrics", dir + "/no/run.json"], "--metrics: the folder \(dir)/no does not exist"),
        ]
        for (args, message) in cases {
            let r = try runTrain(args + ["--no-report"], in: dir)
            #expect(r.status == 1 && r.output.contains(message) && !r.output.contains("epoch 1/"), "\(args): status \(String(describing: r.status)):\n\(r.output)")
        }
    }

    @Test("FCLF_GEMM_BLOCKING: valid values are used and named in the run's first line; an invalid value is reported and ignored")
    func blockingOverride() throws {
        let dir = temporaryDirectory()
        let args = ["--model", "mlp", "--epochs", "1", "--limit-train", "200", "--no-report", "--data", dataDirectory]
        // MC and NC are whole tiles of every variant's (8 x 32, 6 x 16, 4 x 8), so every CPU keeps them as given.
        let forced = try runTrain(args, in: dir, environment: ["FCLF_GEMM_BLOCKING": "48,288,512"])
        #expect(forced.status == 0 && forced.output.contains("gemm blocking mc 48, kc 288, nc 512 (FCLF_GEMM_BLOCKING)"), "\(forced.output)")
        for bad in ["banana", "64,288", "0,288,512", "64,5000,512", "64,288,512,1"] {
            let r = try runTrain(args, in: dir, environment: ["FCLF_GEMM_BLOCKING": bad])
            #expect(r.status == 0 && r.output.contains("FCLF_GEMM_BLOCKING=\"\(bad)\" ignored: expected mc,kc,nc")
                    && r.output.contains("gemm blocking mc \(GEMMBlocking.active.mc), kc \(GEMMBlocking.active.kc)"), "\(bad): \(r.output)")
        }
    }

    @Test("FCLF_GEMM_IN_PLACE_ROWS=0 (every stored B packed) trains the default's model bytes, whose first two dense layers read their weights in place; an invalid value is reported and ignored")
    func inPlaceOverride() throws {
        let dir = temporaryDirectory()
        // The MLP at batch 64: its first two dense layers' forward products (M = 64, weights 784 x 128 and 128 x 64 in
        // 64-byte aligned parameters, K blocks of at most 200 KB) read B in place by default; the last (N = 10) is
        // one partial panel, always packed.
        let args = ["--model", "mlp", "--epochs", "1", "--limit-train", "640", "--batch-size", "64", "--seed", "5", "--no-report",
                    "--data", dataDirectory]
        let inPlace = try runTrain(args + ["--out", dir + "/a.fclf"], in: dir)
        let packed = try runTrain(args + ["--out", dir + "/b.fclf"], in: dir, environment: ["FCLF_GEMM_IN_PLACE_ROWS": "0"])
        try #require(inPlace.status == 0 && packed.status == 0, "\(inPlace.output)\n\(packed.output)")
        let a = try FileIO.read(dir + "/a.fclf", limit: 1 << 24), b = try FileIO.read(dir + "/b.fclf", limit: 1 << 24)
        let same = a == b
        #expect(same, "the packed run's model file differs from the in-place run's")
        for bad in ["-1", "many", "64x", "99999999"] {
            let r = try runTrain(args, in: dir, environment: ["FCLF_GEMM_IN_PLACE_ROWS": bad])
            #expect(r.status == 0 && r.output.contains("FCLF_GEMM_IN_PLACE_ROWS=\"\(bad)\" ignored: expected a row count from 0"),
                    "\(bad): \(r.output)")
        }
    }

    @Test("--erase-p reaches the run: its recipe line names the erasing, in either order with --augment")
    func erasingFlag() throws {
        let dir = temporaryDirectory()
        let base = ["--model", "mlp", "--epochs", "1", "--limit-train", "200", "--no-report", "--data", dataDirectory]
        for args in [["--augment", "photo", "--erase-p", "0.3"], ["--erase-p", "0.3", "--augment", "photo"]] {
            let r = try runTrain(base + args, in: dir)
            #expect(r.status == 0 && r.output.contains("random erasing on 30% of images"), "\(args): \(r.output)")
        }
    }

    @Test("--temperature on a run without a validation split: the model ends with that temperature, the metrics say it was given")
    func givenTemperature() throws {
        let dir = temporaryDirectory()
        let r = try runTrain(["--model", "mlp", "--epochs", "1", "--limit-train", "200", "--val-split", "0", "--temperature", "1.5",
                              "--no-report", "--data", dataDirectory, "--out", dir + "/m.fclf", "--metrics", dir + "/run.json"], in: dir)
        #expect(r.status == 0 && r.output.contains("calibration: temperature 1.500 given, not fitted"), "\(r.output)")
        let model = try ModelFile.load(dir + "/m.fclf")
        #expect(model.specs.last == .temperature(1.5), "\(model.specs)")
        let json = contents(dir + "/run.json")
        #expect(json.contains("\"temperature\": 1.5,") && json.contains("\"temperature_fitted\": false"), "\(json)")
    }

    @Test("--eval needs only the two test files")
    func evalTestFilesOnly() throws {
        let dir = temporaryDirectory()
        for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            #expect(symlink(dataDirectory + "/" + name, dir + "/" + name) == 0)
        }
        let r = try runTrain(["--eval", defaultModelFile, "--data", dir, "--metrics", dir + "/eval.json"], in: dir)
        #expect(r.status == 0, "\(r.output)")
        // The accuracy fclf-train measured when it wrote the built-in model, which the file records.
        guard case .number(let recorded)? = try ModelFile.load(defaultModelFile).metadata["test_accuracy"] else {
            Issue.record("the built-in model records no test accuracy"); return
        }
        #expect(r.output.contains("test accuracy \(Text.fixed(recorded * 100, 2))%"), "\(r.output)")
        #expect(contents(dir + "/eval.json").contains("\"test_accuracy\""))
    }

    @Test("--compare writes --out and --metrics once per model (-cnn, -mlp before the extension)")
    func compareWritesBoth() throws {
        let dir = temporaryDirectory()
        let r = try runTrain(["--compare", "--epochs", "1", "--limit-train", "300", "--threads", "2", "--no-report", "--data", dataDirectory,
                              "--out", dir + "/m.fclf", "--metrics", dir + "/run.json"], in: dir)
        #expect(r.status == 0, "\(r.output)")
        for kind in ["cnn", "mlp"] {
            let model = try ModelFile.load(dir + "/m-\(kind).fclf")
            #expect(model.name == kind)
            let json = contents(dir + "/run-\(kind).json")
            #expect(json.contains("\"model\": \"\(kind)\""))
            // The model file records how and when it was made, and its test accuracy (the metrics' figure).
            guard case .number(let accuracy)? = model.metadata["test_accuracy"], case .string(let command)? = model.metadata["command"],
                  case .string(let created)? = model.metadata["created"] else {
                Issue.record("metadata missing: \(model.metadata)"); continue
            }
            #expect(json.contains("\"test_accuracy\": \(Text.json(accuracy))"))
            #expect(command.hasPrefix("fclf-train --compare --epochs 1") && created.hasSuffix("Z") && created.count == 20)
        }
        #expect(access(dir + "/m.fclf", F_OK) != 0 && access(dir + "/run.json", F_OK) != 0)
    }

    @Test("a loss that becomes NaN (--lr 1e30) stops with status 1, naming the epoch and batch")
    func nanLoss() throws {
        let dir = temporaryDirectory()
        let r = try runTrain(["--model", "mlp", "--lr", "1e30", "--epochs", "1", "--limit-train", "500", "--threads", "2", "--no-report",
                              "--data", dataDirectory, "--checkpoint-dir", dir + "/ck", "--out", dir + "/m.fclf"], in: dir)
        #expect(r.status == 1, "\(r.output)")
        #expect(r.output.contains("fclf-train: error: loss became ") && r.output.contains(" at epoch 1, batch "), "\(r.output)")
        #expect(r.output.contains("; lower --lr"), "\(r.output)")
        #expect(entries(dir + "/ck").isEmpty && access(dir + "/m.fclf", F_OK) != 0)
    }
}
