import Foundation
import PluginAPI

// Lookup tables from files in Postfix `key value` format: `[plugin.table-file.tables.NAME]
// path = "FILE"` registers the table NAME. Files are read when a worker activates the plugin,
// so `postern ctl reload` picks up edits. See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum TableFileRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "table-file", version: "1.0.0", summary: "lookup tables from Postfix-style key/value files",
                kinds: [.lookupTable],
                config: ConfigSchema([
                    ConfigField("tables", .map(.table(ConfigSchema([
                        ConfigField("path", .string, required: true, help: "the table file; relative paths are under data_dir"),
                    ]))), default: .table([:]), help: "one [plugin.table-file.tables.NAME] per table"),
                ])),
            activate: { context in try TableFilePlugin(context: context) })
    }
}

// @unchecked Sendable: its only stored property is a let array of parsed FileTables, immutable after init
final class TableFilePlugin: Plugin, @unchecked Sendable {
    let tables: [(name: String, table: FileTable)]

    init(context: PluginContext) throws {
        var tables: [(String, FileTable)] = []
        let section = context.config.section("tables") ?? ConfigSection()
        for name in section.values.keys.sorted() {
            guard let path = section.section(name)?.string("path") else { continue }
            let file = path.hasPrefix("/") ? path : context.dataDirectory + "/" + path
            guard let data = FileManager.default.contents(atPath: file) else {
                throw TableFileError.unreadable(name: name, path: file)
            }
            let table: FileTable
            do {
                table = try FileTable(parsing: [UInt8](data))
            } catch {
                throw TableFileError.malformed(name: name, path: file, error: "\(error)")
            }
            for d in table.duplicates {
                context.logger.warning("duplicate key ignored", metadata: ["table": "\(name)", "file": "\(file)", "line": "\(d.line)", "key": "\(d.key)"])
            }
            context.logger.info("table loaded", metadata: ["table": "\(name)", "file": "\(file)", "entries": "\(table.entries.count)"])
            tables.append((name, table))
        }
        self.tables = tables
    }

    var services: [ProvidedService] { tables.map { .lookupTable(name: $0.name, $0.table) } }
}

enum TableFileError: Error, CustomStringConvertible {
    case unreadable(name: String, path: String)
    case malformed(name: String, path: String, error: String)

    var description: String {
        switch self {
        case .unreadable(let name, let path): return "table '\(name)': cannot read \(path)"
        case .malformed(let name, let path, let error): return "table '\(name)': \(path): \(error)"
        }
    }
}
