import NIOCore

/// Runs a task's jobs on a NIO event loop (SE-0417 task executor preference). A session handler
/// that starts its state machine's async work with `Task(executorPreference:)` on its channel's
/// loop stays on the thread that reads and writes the socket: a command that needs no other
/// service is answered without waking a thread of Swift's cooperative pool and then the event
/// loop again (two thread wake-ups per command, a third of an SMTP command's latency). Work that
/// awaits another executor (a database queue, an actor) comes back to the loop afterwards.
///
/// What runs here must not block: long CPU work or blocking I/O belongs on threads of its own.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension EventLoop {
    /// Runs `body` now when already on this loop, else as `execute` does.
    public func executeOnLoop(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}
