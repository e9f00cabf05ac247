import Foundation
import PluginAPI

/// The node's status as the master sees it (generations, workers and their sessions, plugins and
/// versions, listeners, reloads and their outcome), in `DATA/status.json`: the admin console
/// runs in a worker, which cannot ask the master's control socket (root's, 0600), so the master
/// writes what `ctl status` answers every `interval` seconds and after each reload. The file's
/// `written` time is the master's heartbeat: a console that finds it older than a few intervals
/// says the master is not running.
public struct NodeStatusFile: Codable, Sendable {
    public struct Reload: Codable, Sendable {
        public var time: Double
        public var ok: Bool
        public var message: String
        public var errors: [String]
    }

    public var written: Double
    public var interval: Double
    public var status: StatusSnapshot
    public var lastReload: Reload?

    public static func path(dataDirectory: String) -> String { dataDirectory + "/status.json" }
}

extension Master {
    static let statusInterval: Int64 = 10

    func startStatusHeartbeat() {
        loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(Self.statusInterval)) { _ in self.writeStatusFile() }
    }

    /// Writes the status file (by rename: a reader never sees half of it), readable by the workers'
    /// user and group only.
    func writeStatusFile() {
        status().whenSuccess { snapshot in
            let file = NodeStatusFile(written: Date().timeIntervalSince1970, interval: Double(Self.statusInterval), status: snapshot,
                                      lastReload: self.lastReload)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            guard let data = try? encoder.encode(file) else { return }
            let path = NodeStatusFile.path(dataDirectory: self.config.dataDirectory)
            let tmp = path + ".tmp"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
            guard fd >= 0 else { return }
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fchmod(fd, 0o640)
            close(fd)
            Privileges.chown(tmp, user: self.config.workerUser, group: self.config.workerGroup)
            if written != data.count || rename(tmp, path) != 0 { unlink(tmp) }
        }
    }
}
