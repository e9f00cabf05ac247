import ArgumentParser
import Foundation
import PluginAPI
import PosternHost

/// `postern queue ...`: the mail queue, whether or not the server runs (the spool is shared
/// between processes; an entry being delivered is left alone until its attempt ends).
public struct QueueCommand: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "List and control the mail queue.",
        subcommands: [List.self, Show.self, Hold.self, Release.self, Delete.self, Flush.self, Requeue.self])

    static func date(_ t: Int64?) -> String {
        guard let t else { return "-" }
        return MailDate(secondsSince1970: t).imap.trimmingCharacters(in: .whitespaces)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every queued message: id, queue, size, arrival, sender, pending recipients.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "JSON instead of text.") var json = false
        @Option(help: "Only messages on hold whose reason contains this text (any case), e.g. the name of the filter that quarantined them.")
        var reason: String?
        func run() throws {
            var entries = try runAdmin(options) { try await $0.queue().list() }
            if let reason {
                entries = entries.filter { $0.holdReason?.range(of: reason, options: .caseInsensitive) != nil }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(entries), as: UTF8.self))
                return
            }
            for e in entries {
                print("\(e.id)\t\(e.queue)\t\(e.size)\t\(QueueCommand.date(e.arrival))\t<\(e.sender)>\tattempts=\(e.attempts)\tnext=\(QueueCommand.date(e.nextAttempt))"
                      + (e.holdReason.map { "\tquarantined=\($0)" } ?? ""))
                for p in e.pending { print("\t\(p.address)\t\(p.lastReply ?? "-")") }
            }
            print("\(entries.count) message(s)")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one queued message as it will be delivered.")
        @OptionGroup var options: ConfigOption
        @Argument var id: String
        func run() throws {
            let id = self.id
            guard let (_, bytes) = try runAdmin(options, { try await $0.queue().show(id: id) }) else {
                FileHandle.standardError.write(Data("postern queue: no message \(id)\n".utf8))
                throw ExitCode(1)
            }
            try FileHandle.standardOutput.write(contentsOf: Data(bytes))
        }
    }

    /// The subcommands that act on ids (or, where it makes sense, on everything).
    struct IDs: ParsableArguments {
        @Argument(help: "Queue ids.") var ids: [String] = []
        @Flag(help: "Every message in the queue.") var all = false
        func validate() throws {
            if ids.isEmpty && !all { throw ValidationError("give queue ids, or --all") }
        }
        var selected: [String] { all ? [] : ids }
    }

    static func act(_ options: ConfigOption, _ verb: String, _ action: @escaping @Sendable (any MailQueue) async throws -> Int) throws {
        let n = try runAdmin(options) { try await action($0.queue()) }
        print("\(verb) \(n) message(s)")
    }

    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put messages on hold: no delivery until released.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var target: IDs
        func run() throws {
            let ids = target.all ? try runAdmin(options) { try await $0.queue().list().map(\.id) } : target.ids
            try QueueCommand.act(options, "held") { try await $0.hold(ids: ids) }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release held messages for delivery now.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var target: IDs
        func run() throws {
            let ids = target.selected
            try QueueCommand.act(options, "released") { try await $0.release(ids: ids) }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete messages from the queue, without a bounce.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var target: IDs
        func run() throws {
            let ids = target.all ? try runAdmin(options) { try await $0.queue().list().map(\.id) } : target.ids
            try QueueCommand.act(options, "deleted") { try await $0.delete(ids: ids) }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Try deferred messages now (all without ids).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Queue ids; none for every deferred message.") var ids: [String] = []
        func run() throws {
            let ids = self.ids
            try QueueCommand.act(options, "flushed") { try await $0.flush(ids: ids) }
        }
    }

    struct Requeue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Route messages again (after alias or transport changes) and try them now.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Queue ids; none for every message not on hold.") var ids: [String] = []
        func run() throws {
            let ids = self.ids
            try QueueCommand.act(options, "requeued") { try await $0.requeue(ids: ids) }
        }
    }
}
