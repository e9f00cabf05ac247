import Foundation

/// A config shipped in `Config/`, made runnable beside other tests: every `port = N` and the
/// metrics address moved to free ports (`ports` maps each shipped port to its new one), the data
/// directory inside the test's directory.
public func shippedConfig(_ name: String, ports: inout [Int: Int]) throws -> String {
    let text = try String(contentsOfFile: Build.packageRoot + "/Config/" + name, encoding: .utf8)
    var lines: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("port = "), let old = Int(line.dropFirst("port = ".count).prefix { $0.isNumber }) {
            let new = freePort()
            ports[old] = new
            lines.append("port = \(new)")
        } else if line.hasPrefix("listen = \"127.0.0.1:") {
            lines.append("listen = \"127.0.0.1:\(freePort())\"")
        } else if line.hasPrefix("data_dir = ") {
            lines.append("data_dir = \"./var\"")
        } else {
            lines.append(String(line))
        }
    }
    return lines.joined(separator: "\n")
}
