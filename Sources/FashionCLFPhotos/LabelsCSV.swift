import FashionCLF

/// The --labels file: a CSV whose header names the columns `file` and `label_index` (or `label`).
///
/// RFC 4180 as spreadsheets write it: fields may be quoted (a quoted field may hold commas and doubled
/// quotes), lines end in LF or CRLF, and a UTF-8 byte-order mark at the start is skipped.
public enum LabelsCSV {
    /// File name (without folder) -> class index 0-9. Blank lines are skipped.
    public static func read(_ path: String) throws(FCLFError) -> [String: Int] {
        var bytes = try FileIO.read(path, limit: 1 << 24)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard let text = String(validating: bytes, as: UTF8.self), !bytes.contains(0) else {
            throw .invalidArgument("\(path): not a UTF-8 text file; give a CSV with the columns file and label_index")
        }
        var lines = try rows(text, path: path)
        guard !lines.isEmpty else { throw .invalidArgument("\(path): empty labels file; expected a header with file,label_index") }
        let header = lines.removeFirst().fields.map { $0.trimmed.lowercased() }
        guard let f = header.firstIndex(of: "file"), let l = header.firstIndex(of: "label_index") ?? header.firstIndex(of: "label") else {
            throw .invalidArgument("\(path): the header must name the columns file and label_index (found \(header.joined(separator: ",")))")
        }
        var map: [String: Int] = [:]
        for (line, row) in lines {
            guard row.count > max(f, l) else {
                throw .invalidArgument("\(path): line \(line): \(row.count) field(s), the header has \(header.count); give file and label_index on every line")
            }
            let v = row[l].trimmed
            guard let index = Int(v), (0...9).contains(index) else {
                throw .invalidArgument("\(path): line \(line): label \"\(v)\" is not a class index 0-9")
            }
            map[row[f].trimmed] = index
        }
        return map
    }

    /// The non-blank records of `text` with their line numbers (1-based, where the record starts).
    public static func rows(_ text: String, path: String) throws(FCLFError) -> [(line: Int, fields: [String])] {
        var out: [(Int, [String])] = []
        var fields: [String] = [], field = "", quoted = false, wasQuoted = false
        var line = 1, start = 1
        var chars = Array(text.unicodeScalars)[...]
        func endRecord() {
            fields.append(field)
            if !(fields.count == 1 && fields[0].trimmed.isEmpty && !wasQuoted) { out.append((start, fields)) }
            fields = []; field = ""; wasQuoted = false
        }
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { chars.removeFirst(); field.unicodeScalars.append("\"") } else { quoted = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.trimmed.isEmpty:
                quoted = true; wasQuoted = true; field = ""
            case ",":
                fields.append(field); field = ""
            case "\r" where chars.first == "\n":
                continue
            case "\n", "\r":
                endRecord(); line += 1; start = line
            default:
                field.unicodeScalars.append(c)
            }
        }
        guard !quoted else { throw .invalidArgument("\(path): line \(start): a quoted field is not closed; end it with a double quote") }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return out
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmed: String { String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
}
