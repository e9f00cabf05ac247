/// A configuration value as it came out of the TOML file, with no TOML library types in it so that
/// plugins can read their section without linking the host's parser.
public indirect enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([ConfigValue])
    case table([String: ConfigValue])

    /// The TOML type name, used in error messages ("expected integer, found string").
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .boolean: return "boolean"
        case .array: return "array"
        case .table: return "table"
        }
    }

    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .integer(let i): return String(i)
        case .float(let d): return String(d)
        case .boolean(let b): return String(b)
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .table(let t): return "{" + t.keys.sorted().map { "\($0) = \(t[$0]!)" }.joined(separator: ", ") + "}"
        }
    }
}

/// The type a configuration key must have.
public indirect enum ConfigType: Sendable, Equatable, CustomStringConvertible {
    case string
    /// One of a fixed set of strings.
    case oneOf([String])
    case integer(ClosedRange<Int>? = nil)
    case float
    case boolean
    /// A byte size: an integer, or a string such as `"512K"`, `"10M"`, `"1G"`.
    case size
    /// A duration: an integer (seconds), or a string such as `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`.
    case duration
    case array(ConfigType)
    /// A nested table with its own schema.
    case table(ConfigSchema)
    /// A table of values of one type, keyed freely (e.g. a map of domain to path).
    case map(ConfigType)
    /// Any table; its contents are checked elsewhere (a plugin's section, a listener's options).
    case anyTable

    public var description: String {
        switch self {
        case .string: return "string"
        case .oneOf(let values): return "one of " + values.map { "\"\($0)\"" }.joined(separator: ", ")
        case .integer(let range?): return "integer in \(range.lowerBound)...\(range.upperBound)"
        case .integer(nil): return "integer"
        case .float: return "float"
        case .boolean: return "boolean"
        case .size: return "size (bytes, or a string like \"10M\")"
        case .duration: return "duration (seconds, or a string like \"30s\")"
        case .array(let t): return "array of \(t)"
        case .table: return "table"
        case .map(let t): return "table of \(t)"
        case .anyTable: return "table"
        }
    }
}

/// One key a plugin (or the host) accepts, with its default.
public struct ConfigField: Sendable, Equatable {
    public var name: String
    public var type: ConfigType
    public var defaultValue: ConfigValue?
    public var required: Bool
    public var help: String

    public init(_ name: String, _ type: ConfigType, default defaultValue: ConfigValue? = nil,
                required: Bool = false, help: String = "") {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
        self.help = help
    }
}

/// A problem found in a configuration: the key path (e.g. `["plugin", "greeter", "greeting"]`, or
/// `["listener", "0", "port"]` inside an array of tables) and what is wrong with it. The host turns
/// the key path into a file and line.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var keyPath: [String]
    public var message: String

    public init(keyPath: [String], message: String) {
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String { "\(keyPath.joined(separator: ".")): \(message)" }
}

/// The settings a plugin declares. Unknown keys are errors; missing keys take their defaults.
public struct ConfigSchema: Sendable, Equatable {
    public var fields: [ConfigField]

    public init(_ fields: [ConfigField] = []) {
        self.fields = fields
    }

    public func field(_ name: String) -> ConfigField? { fields.first { $0.name == name } }

    /// Checks `table` and returns every problem, each with its full key path under `path`.
    public func validate(_ table: [String: ConfigValue], at path: [String] = []) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        for key in table.keys.sorted() where field(key) == nil {
            let known = fields.map(\.name).sorted().joined(separator: ", ")
            issues.append(ConfigIssue(keyPath: path + [key],
                                      message: "unknown key '\(key)' (known keys: \(known.isEmpty ? "none" : known))"))
        }
        for field in fields {
            guard let value = table[field.name] else {
                if field.required {
                    issues.append(ConfigIssue(keyPath: path + [field.name], message: "required key '\(field.name)' is missing"))
                }
                continue
            }
            issues += Self.check(value, against: field.type, at: path + [field.name])
        }
        return issues
    }

    static func check(_ value: ConfigValue, against type: ConfigType, at path: [String]) -> [ConfigIssue] {
        func wrong() -> [ConfigIssue] {
            [ConfigIssue(keyPath: path, message: "expected \(type), found \(value.typeName) \(value)")]
        }
        switch (type, value) {
        case (.string, .string), (.float, .float), (.float, .integer), (.boolean, .boolean):
            return []
        case (.oneOf(let allowed), .string(let s)):
            return allowed.contains(s) ? [] : wrong()
        case (.integer(let range), .integer(let i)):
            if let range, !range.contains(i) { return wrong() }
            return []
        case (.size, .integer(let i)):
            return i >= 0 ? [] : wrong()
        case (.size, .string(let s)):
            return ConfigSection.parseSize(s) == nil ? wrong() : []
        case (.duration, .integer(let i)):
            return i >= 0 ? [] : wrong()
        case (.duration, .string(let s)):
            return ConfigSection.parseDuration(s) == nil ? wrong() : []
        case (.array(let element), .array(let items)):
            return items.enumerated().flatMap { check($0.element, against: element, at: path + [String($0.offset)]) }
        case (.table(let schema), .table(let t)):
            return schema.validate(t, at: path)
        case (.anyTable, .table):
            return []
        case (.map(let element), .table(let t)):
            return t.keys.sorted().flatMap { check(t[$0]!, against: element, at: path + [$0]) }
        default:
            return wrong()
        }
    }

    /// `table` with every missing key that has a default filled in (nested tables included).
    public func applyingDefaults(to table: [String: ConfigValue]) -> [String: ConfigValue] {
        var out = table
        for field in fields {
            if let value = out[field.name] {
                if case .table(let schema) = field.type, case .table(let inner) = value {
                    out[field.name] = .table(schema.applyingDefaults(to: inner))
                }
            } else if let def = field.defaultValue {
                out[field.name] = def
            } else if case .table(let schema) = field.type {
                out[field.name] = .table(schema.applyingDefaults(to: [:]))
            }
        }
        return out
    }
}

/// A validated section with defaults applied: what a plugin receives for `[plugin.NAME]` or a
/// listener's `[listener.options]`. Accessors trap only on a key the schema does not declare,
/// which is a programming error in the plugin, never a user error.
public struct ConfigSection: Sendable, Equatable {
    public let values: [String: ConfigValue]

    public init(_ values: [String: ConfigValue] = [:]) {
        self.values = values
    }

    public subscript(key: String) -> ConfigValue? { values[key] }

    public func string(_ key: String) -> String? {
        if case .string(let s)? = values[key] { return s }
        return nil
    }

    public func int(_ key: String) -> Int? {
        if case .integer(let i)? = values[key] { return i }
        return nil
    }

    public func double(_ key: String) -> Double? {
        switch values[key] {
        case .float(let d)?: return d
        case .integer(let i)?: return Double(i)
        default: return nil
        }
    }

    public func bool(_ key: String) -> Bool? {
        if case .boolean(let b)? = values[key] { return b }
        return nil
    }

    public func strings(_ key: String) -> [String]? {
        guard case .array(let items)? = values[key] else { return nil }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }

    public func section(_ key: String) -> ConfigSection? {
        if case .table(let t)? = values[key] { return ConfigSection(t) }
        return nil
    }

    /// A `.size` key in bytes.
    public func size(_ key: String) -> Int? {
        switch values[key] {
        case .integer(let i)?: return i
        case .string(let s)?: return Self.parseSize(s)
        default: return nil
        }
    }

    /// A `.duration` key in seconds.
    public func duration(_ key: String) -> Double? {
        switch values[key] {
        case .integer(let i)?: return Double(i)
        case .string(let s)?: return Self.parseDuration(s)
        default: return nil
        }
    }

    /// `"512"`, `"64K"`, `"10M"`, `"1G"` (binary multiples, optional trailing `B`).
    public static func parseSize(_ text: String) -> Int? {
        var s = text.trimmingCharacters(in: " ").uppercased()
        if s.hasSuffix("B") { s.removeLast() }
        let multipliers: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var multiplier = 1
        if let last = s.last, let m = multipliers[last] {
            multiplier = m
            s.removeLast()
        }
        guard let n = Int(s), n >= 0 else { return nil }
        let (product, overflow) = n.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, or a bare number of seconds.
    public static func parseDuration(_ text: String) -> Double? {
        let s = text.trimmingCharacters(in: " ").lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where s.hasSuffix(suffix) {
            guard let n = Double(s.dropLast(suffix.count)), n >= 0 else { return nil }
            return n * scale
        }
        guard let n = Double(s), n >= 0 else { return nil }
        return n
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var sub = Substring(self)
        while sub.first == set { sub.removeFirst() }
        while sub.last == set { sub.removeLast() }
        return String(sub)
    }
}
