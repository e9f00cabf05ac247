/// Merges the Prometheus text expositions of several processes (the master and each worker) into
/// one, adding a label that tells the sources apart. Each metric family keeps one `# HELP` and one
/// `# TYPE` line followed by the samples of every source, as the exposition format requires.
public enum MetricsMerge {
    public struct Source {
        public var label: (name: String, value: String)?
        public var text: String

        public init(label: (name: String, value: String)?, text: String) {
            self.label = label
            self.text = text
        }
    }

    public static func merge(_ sources: [Source]) -> String {
        var order: [String] = []
        var headers: [String: [String]] = [:]
        var samples: [String: [String]] = [:]
        for source in sources {
            var family = ""
            for raw in source.text.split(separator: "\n", omittingEmptySubsequences: true) {
                let line = String(raw)
                if line.hasPrefix("# ") {
                    let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                    guard parts.count >= 3, parts[1] == "HELP" || parts[1] == "TYPE" else { continue }
                    family = parts[2]
                    if headers[family] == nil { order.append(family); headers[family] = [] }
                    if !headers[family]!.contains(where: { $0.hasPrefix("# \(parts[1]) ") }) { headers[family]!.append(line) }
                    continue
                }
                if line.hasPrefix("#") { continue }
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                // Samples belong to the family of the last header, unless they start a new one.
                if family.isEmpty || !(name == family || name.hasPrefix(family + "_")) {
                    family = name
                    if headers[family] == nil { order.append(family); headers[family] = [] }
                }
                samples[family, default: []].append(labelled(line, name: name, label: source.label))
            }
        }
        var out = ""
        for family in order {
            for h in headers[family] ?? [] { out += h + "\n" }
            for s in samples[family] ?? [] { out += s + "\n" }
        }
        return out
    }

    static func labelled(_ line: String, name: String, label: (name: String, value: String)?) -> String {
        guard let label else { return line }
        let pair = "\(label.name)=\"\(label.value)\""
        let rest = line.dropFirst(name.count)
        if rest.hasPrefix("{}") { return name + "{" + pair + "}" + rest.dropFirst(2) }
        if rest.hasPrefix("{") { return name + "{" + pair + "," + rest.dropFirst() }
        return name + "{" + pair + "}" + rest
    }
}
