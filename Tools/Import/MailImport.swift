import Foundation
import PluginAPI

/// `postern admin import maildir|mbox`: appends what `Maildir` and `Mbox` read to a store, creating
/// missing mailboxes. A message the store refuses is reported and the import goes on.
public enum MailImport {
    /// What an import did, in the order the CLI prints it.
    public struct Report: Sendable, Equatable {
        /// Each mailbox written to, in import order, with the number of messages appended.
        public var mailboxes: [(name: String, count: Int)] = []
        /// Messages or folders not imported: `FILE: reason` (`FILE:LINE: reason` for mbox).
        public var refused: [String] = []
        /// Imported anyway, but worth a look (e.g. a size that differs from the file name's).
        public var warnings: [String] = []

        public init() {}

        public var imported: Int { mailboxes.reduce(0) { $0 + $1.count } }

        /// `Sent: 12 messages` per mailbox, then the total.
        public var lines: [String] {
            mailboxes.map { "\($0.name): \(plural($0.count))" } + ["total: \(plural(imported)) imported, \(refused.count) refused"]
        }

        private func plural(_ n: Int) -> String { n == 1 ? "1 message" : "\(n) messages" }

        public static func == (a: Report, b: Report) -> Bool {
            a.mailboxes.map(\.name) == b.mailboxes.map(\.name) && a.mailboxes.map(\.count) == b.mailboxes.map(\.count)
                && a.refused == b.refused && a.warnings == b.warnings
        }
    }

    /// Imports a Maildir++ tree; folder names get `prefix/` in front when a prefix is given (INBOX
    /// becomes `prefix/INBOX`).
    public static func maildir(root: String, user: String, prefix: String?, into store: any StorageBackend) async throws -> Report {
        let (folders, problems) = Maildir.plan(try Maildir.list(root: root))
        var report = Report()
        report.refused += problems.map { "\(root)/\($0)" }
        var existing = Set(try await store.mailboxes(user: user).map(\.name))
        for folder in folders {
            let name = prefix.map { "\($0)/\(folder.name)" } ?? folder.name
            report.warnings += folder.problems.map { "\(root)/\($0)" }
            guard try await ensure(name, user: user, store: store, existing: &existing, report: &report, what: "\(root)/\(folder.directory)") else { continue }
            var count = 0
            for entry in folder.messages {
                let path = root + "/" + entry.path
                do {
                    let (bytes, date) = try Maildir.read(root: root, entry: entry)
                    if let expected = entry.expectedSize, expected != bytes.count {
                        report.warnings.append("\(path): \(bytes.count) bytes, the name says S=\(expected) (changed or truncated since it was saved)")
                    }
                    _ = try await store.append(user: user, mailbox: name, message: bytes, flags: entry.flags, internalDate: date)
                    count += 1
                } catch {
                    report.refused.append("\(path): \(error)")
                }
            }
            report.mailboxes.append((name, count))
        }
        return report
    }

    /// Imports an mbox file into one mailbox.
    public static func mbox(file: String, user: String, mailbox: String, format: Mbox.Format, into store: any StorageBackend) async throws -> Report {
        guard let data = FileManager.default.contents(atPath: file) else { throw ImportError("cannot read \(file)") }
        let (messages, problems) = Mbox.parse([UInt8](data), format: format)
        var report = Report()
        report.refused += problems.map { "\(file):\($0.line): \($0.reason)" }
        var existing = Set(try await store.mailboxes(user: user).map(\.name))
        guard try await ensure(mailbox, user: user, store: store, existing: &existing, report: &report, what: file) else { return report }
        var count = 0
        for m in messages {
            do {
                _ = try await store.append(user: user, mailbox: mailbox, message: m.bytes, flags: m.flags, internalDate: m.internalDate)
                count += 1
            } catch {
                report.refused.append("\(file):\(m.line): \(error)")
            }
        }
        report.mailboxes.append((mailbox, count))
        return report
    }

    /// Creates the mailbox unless it exists; false (with the reason reported) when it cannot.
    private static func ensure(_ name: String, user: String, store: any StorageBackend, existing: inout Set<String>,
                               report: inout Report, what: String) async throws -> Bool {
        if name.uppercased() == "INBOX" || existing.contains(name) { return true }
        do {
            try await store.createMailbox(user: user, name: name)
            existing.insert(name)
            return true
        } catch {
            report.refused.append("\(what): cannot create mailbox \(name): \(error)")
            return false
        }
    }
}
