import ArgumentParser
import FashionCLF
import FashionCLFONNX

@main
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fclf-export",
        abstract: "Write a fashionclf model as ONNX, for ONNX Runtime and other ONNX readers.",
        discussion: """
            The graph is the model's inference plan (BatchNorm folded into the layer before it), ending in \
            Softmax. Input x: float32 [n, 1, 28, 28] holding pixels / 255; output probabilities: float32 \
            [n, 10]. IR version \(ONNXExport.irVersion), opset \(ONNXExport.opset). The model's metadata travels \
            as the ONNX metadata property fashionclf_metadata.
            """)

    @Argument(help: "Model file written by fclf-train --out (default: the model built into the library).")
    var model: String?

    @Option(help: "The ONNX file to write (atomically).")
    var onnx: String

    func run() throws {
        do {
            try FileIO.checkDestination(onnx, option: "--onnx")
            let classifier = try model.map { try Classifier(contentsOf: $0) } ?? Classifier.builtIn()
            let bytes = try ONNXExport.model(classifier)
            try FileIO.writeAtomically(bytes, to: onnx)
            print("\(onnx): \(classifier.name), \(classifier.plan.steps.count) steps, \(bytes.count) bytes")
        } catch let error as FCLFError {
            Console.error("fclf-export: error: \(error)")
            throw ExitCode.failure
        }
    }
}
