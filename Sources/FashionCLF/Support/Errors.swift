/// Every failure a user can cause. Each message fits on one line: what went wrong, where, and how to fix it.
public enum FCLFError: Error, CustomStringConvertible, Equatable {
    case datasetMissing(path: String)
    case badDataFile(path: String, reason: String)
    case modelFile(path: String, reason: String)
    case io(path: String, reason: String)
    case invalidArgument(String)
    /// A photo that cannot be used; the message names the file, the problem and the fix.
    case photo(String)
    /// A request beyond a documented limit, or memory that could not be had.
    case resourceLimit(String)
    /// A computation whose result is not a finite number (a model whose weights overflow float32).
    case numeric(String)

    public var description: String {
        switch self {
        case .datasetMissing(let path):
            return "\(path): Fashion-MNIST file not found; install it with `apt-get install dataset-fashion-mnist` or point --data / FCLF_DATA at a folder holding the four IDX .gz files"
        case .badDataFile(let path, let reason):
            return "\(path): \(reason); replace it with the original file (`apt-get install --reinstall dataset-fashion-mnist`)"
        case .modelFile(let path, let reason):
            return "\(path): \(reason); write a model with `fclf-train --out FILE`"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .invalidArgument(let message), .photo(let message), .resourceLimit(let message),
             .numeric(let message):
            return message
        }
    }
}
