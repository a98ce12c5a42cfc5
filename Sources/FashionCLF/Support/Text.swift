/// Number and column formatting without Foundation (the library stays Foundation-free).
public enum Text {
    /// `x` with exactly `decimals` digits after the point, rounded half away from zero.
    public static func fixed(_ x: Double, _ decimals: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        guard scaled < 9e18 else { return String(x) }
        let n = UInt64(scaled), ip = n / UInt64(scale), fp = n % UInt64(scale)
        var frac = String(fp)
        frac = String(repeating: "0", count: max(0, decimals - frac.count)) + frac
        let sign = x < 0 && n != 0 ? "-" : ""
        return decimals > 0 ? "\(sign)\(ip).\(frac)" : "\(sign)\(ip)"
    }

    /// A non-negative count with thousands separators: 225034 -> "225,034".
    public static func grouped(_ v: Int) -> String {
        let digits = Array(String(v))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }

    public static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    /// A JSON number: non-finite values have no JSON form and become null.
    public static func json(_ x: Double) -> String { x.isFinite ? String(x) : "null" }

    public static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where u.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
