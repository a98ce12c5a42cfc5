import FashionCLF

#if canImport(Glibc)
import Glibc
#endif

/// Which files a list of photos and folders names.
public enum PhotoFolder {
    /// The file name endings taken from a folder (compared without case).
    public static let extensions = [".jpg", ".jpeg", ".png"]

    /// The inputs in order: a folder becomes its .jpg/.jpeg/.png files (sorted by name; sub-folders are not
    /// walked); anything else, a missing path included, is kept as given (loading it reports the error).
    /// A folder without photos is an error: it is almost always the wrong folder.
    public static func expand(_ inputs: [String]) throws(FCLFError) -> [String] {
        var files: [String] = []
        for input in inputs {
            var st = stat()
            guard stat(input, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { files.append(input); continue }
            guard let dir = opendir(input) else { throw .io(path: input, reason: "cannot list the folder; check its permissions") }
            var found: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                let lower = name.lowercased()
                if extensions.contains(where: { lower.hasSuffix($0) }) {
                    found.append(input + (input.hasSuffix("/") ? "" : "/") + name)
                }
            }
            closedir(dir)
            guard !found.isEmpty else {
                throw .invalidArgument("\(input): no photos (\(extensions.joined(separator: ", ")) files) in this folder; sub-folders are not searched, name them instead")
            }
            files += found.sorted()
        }
        return files
    }
}
