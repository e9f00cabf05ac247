import Foundation
import PluginAPI
import TOMLKit

/// A rules file: TOML with `[[sets]]` and `[[sets.rules]]`, the same keys as the inline sets.
/// TOMLKit is linked into this plugin (as GRDB is into the plugins that use it); no TOMLKit type
/// leaves this file, so the host's own copy and this one never meet.
enum RuleFile {
    /// The sets of the TOML `text`, read from `origin` (a path, for messages).
    static func sets(text: String, origin: String, defaults: [Rule]) throws -> [RuleSet] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw RuleConfigError("\(origin):\(error.source.begin.line): TOML syntax error: \(error.description)")
        } catch {
            throw RuleConfigError("\(origin): TOML syntax error: \(error)")
        }
        let values = convert(table)
        let issues = RuleSchema.file.validate(values)
        if !issues.isEmpty {
            throw RuleConfigError(issues.map { "\(origin): \($0)" }.joined(separator: "\n"))
        }
        guard case .array(let items)? = values["sets"] else { return [] }
        return try RuleSetBuilder.sets(items, origin: origin, defaults: defaults)
    }

    /// The sets of the file at `path`.
    static func sets(path: String, defaults: [Rule]) throws -> [RuleSet] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleConfigError("rules_file \(path): cannot read it (\(String(cString: strerror(errno))))")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw RuleConfigError("rules_file \(path): not UTF-8") }
        return try sets(text: text, origin: "rules_file \(path)", defaults: defaults)
    }

    /// The shipped default set (`DefaultRules.text`, the same text as default-rules.toml).
    static func defaultSet() -> RuleSet {
        do {
            guard let set = try sets(text: DefaultRules.text, origin: "default rules", defaults: []).first else {
                fatalError("the default rules define no set")
            }
            return set
        } catch {
            // A test reads the same text: a broken default never ships.
            fatalError("the default rules do not load: \(error)")
        }
    }

    static func convert(_ table: TOMLTable) -> [String: ConfigValue] {
        var out: [String: ConfigValue] = [:]
        for (key, value) in table { out[key] = convert(value) }
        return out
    }

    static func convert(_ value: TOMLValueConvertible) -> ConfigValue {
        switch value.type {
        case .table: return .table(convert(value.table!))
        case .array: return .array(value.array!.map { convert($0) })
        case .string: return .string(value.string!)
        case .int: return .integer(value.int!)
        case .double: return .float(value.double!)
        case .bool: return .boolean(value.bool!)
        default: return .string(value.tomlValue.debugDescription)
        }
    }
}
