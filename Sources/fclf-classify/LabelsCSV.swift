import FashionCLF

/// The --labels file: a CSV whose header names the columns `file` and `label_index` (or `label`).
enum LabelsCSV {
    /// File name (without folder) -> class index 0-9. Rows shorter than the header's two columns are skipped.
    static func read(_ path: String) throws(FCLFError) -> [String: Int] {
        let text = String(decoding: try FileIO.read(path, limit: 1 << 24), as: UTF8.self)
        var lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map(field) }
        guard !lines.isEmpty else { throw .invalidArgument("\(path): empty labels file; expected a header with file,label_index") }
        let header = lines.removeFirst()
        guard let f = header.firstIndex(of: "file"), let l = header.firstIndex(of: "label_index") ?? header.firstIndex(of: "label") else {
            throw .invalidArgument("\(path): the header must name the columns file and label_index")
        }
        var map: [String: Int] = [:]
        for (n, row) in lines.enumerated() where row.count > max(f, l) {
            guard let v = Int(row[l]), (0...9).contains(v) else {
                throw .invalidArgument("\(path): line \(n + 2): label \"\(row[l])\" is not a class index 0-9")
            }
            map[row[f]] = v
        }
        return map
    }

    /// A field without surrounding spaces and double quotes (and a trailing carriage return).
    static func field(_ s: Substring) -> String {
        String(s.drop { $0 == " " || $0 == "\"" }.reversed().drop { $0 == " " || $0 == "\"" || $0 == "\r" }.reversed())
    }
}
