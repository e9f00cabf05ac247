import Foundation
import PosternTestSupport

// The Postern the milter tests talk to: FilterServer (Tests/TestSupport/FilterServer.swift) with
// the milter plugin, one `[plugin.milter.milters.NAME]` per milter. The milters themselves are
// PeerProcesses in a PeerRig (Tests/TestSupport/PeerProcess.swift).

typealias MilterServer = FilterServer

extension FilterServer {
    /// `milters`: `[plugin.milter.milters.NAME]` bodies by name; `listeners`: each listener's name
    /// and `[listener.options]` lines.
    init(_ name: String, milters: [String: String], listeners: [(name: String, options: String)]) throws {
        let plugins = milters.sorted(by: { $0.key < $1.key }).map { "[plugin.milter.milters.\($0.key)]\n\($0.value)\n" }.joined()
        try self.init(name, plugins: plugins, listeners: listeners)
    }
}
