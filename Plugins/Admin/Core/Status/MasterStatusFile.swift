import Foundation
import PluginAPI

/// The master's status file (`DATA/status.json`, written by the host every `interval` seconds and
/// after each reload) as the plugin reads it: the master's answer to `ctl status` as it wrote it,
/// and its age, which is the master's heartbeat.
struct MasterStatusFile {
    var value: JSONValue
    /// Seconds since the master wrote it.
    var age: Double
    /// False when it is older than three of its intervals.
    var running: Bool

    static func read(dataDirectory: String, now: Double = Date().timeIntervalSince1970) -> MasterStatusFile? {
        guard let data = FileManager.default.contents(atPath: dataDirectory + "/status.json"),
              let value = try? JSONDecoder().decode(JSONValue.self, from: data),
              case .object(let fields) = value, case .number(let written)? = fields["written"] else { return nil }
        var interval = 10.0
        if case .number(let n)? = fields["interval"] { interval = n }
        let age = max(0, now - written)
        return MasterStatusFile(value: value, age: age, running: age <= 3 * interval)
    }
}
