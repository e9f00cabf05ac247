import Foundation
import PluginAPI

/// A worker's `HostControl`: a plugin's request goes to the master as a `reloadRequest` on the
/// worker's status channel, and the master's `reloaded` (same id) answers it. The channel is set
/// once the status channel is connected; a request before that, or one the master does not answer
/// within two minutes (a reload waits for the new generation to be ready), gets a refusal.
final class WorkerHostControl: HostControl, @unchecked Sendable {
    // @unchecked Sendable: channel, nextID and pending are read and written under `lock` only.
    private let lock = NIOLock()
    private var channel: (any Channel)?
    private var nextID = 0
    private var pending: [Int: CheckedContinuation<HostControlReply, Never>] = [:]

    func connected(_ channel: any Channel) {
        lock.withLock { self.channel = channel }
    }

    func requestReload() async -> HostControlReply {
        await withCheckedContinuation { continuation in
            let sent: (any Channel, Int)? = lock.withLock {
                guard let channel else { return nil }
                nextID += 1
                pending[nextID] = continuation
                return (channel, nextID)
            }
            guard let (channel, id) = sent else {
                continuation.resume(returning: HostControlReply(ok: false, message: "this worker is not connected to its master"))
                return
            }
            channel.writeAndFlush(JSONLines.encode(WorkerMessage(event: .reloadRequest, id: id)), promise: nil)
            channel.eventLoop.scheduleTask(in: .seconds(120)) {
                self.answer(id, HostControlReply(ok: false, message: "the master did not answer within two minutes"))
            }
        }
    }

    /// The master's answer (or the timeout's); the first one for an id wins.
    func answer(_ id: Int, _ reply: HostControlReply) {
        let continuation = lock.withLock { pending.removeValue(forKey: id) }
        continuation?.resume(returning: reply)
    }

    /// The master went away: nobody will answer.
    func disconnected() {
        let waiting = lock.withLock { () -> [CheckedContinuation<HostControlReply, Never>] in
            channel = nil
            defer { pending = [:] }
            return Array(pending.values)
        }
        waiting.forEach { $0.resume(returning: HostControlReply(ok: false, message: "the master went away")) }
    }
}
