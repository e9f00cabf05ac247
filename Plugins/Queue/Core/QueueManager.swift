import Foundation
import PluginAPI

// The queue manager: the loop that starts delivery attempts. A message this process enqueued is
// handed over in memory with its lock and started at once; the queue directories are scanned
// every `scan_interval` for everything else (deferred entries coming due, entries of other
// processes, entries left active by a process that died).
extension QueueService {
    /// Starts the delivery loop (serving processes only).
    func start() {
        lock.withLock { running = true }
        Task.detached { [self] in await self.loop() }
    }

    /// Stops taking entries and waits (up to `timeout`) for the attempts in flight, so that the
    /// plugins they deliver through, stopped after the queue, are not pulled from under them. An
    /// attempt still running after that is cut as by a crash: its entry stays in `active/` and the
    /// next manager takes it over.
    func stop(timeout: Double = 10) {
        let (c, waiting): (CheckedContinuation<Void, Never>?, [(entry: QueueEntry, held: EntryLock)]) = lock.withLock {
            stopped = true
            defer { wakeUp = nil; handedOff = [] }
            return (wakeUp, handedOff)
        }
        // Not started: they stay in `incoming/` for the next manager.
        for w in waiting { w.held.release() }
        c?.resume()
        let deadline = Date().addingTimeInterval(timeout)
        while lock.withLock({ !inFlight.isEmpty }) && Date() < deadline { usleep(10_000) }
        let left = lock.withLock { inFlight.count }
        if left > 0 { logger.warning("stopping with delivery attempts still running", metadata: ["attempts": "\(left)"]) }
    }

    func wake() {
        let c: CheckedContinuation<Void, Never>? = lock.withLock {
            guard let waiting = wakeUp else {
                wakePending = true
                return nil
            }
            wakeUp = nil
            return waiting
        }
        c?.resume()
    }

    /// After a change to the queue directories (`postern queue ...` in this process): scan now.
    func wakeToScan() {
        lock.withLock { rescanWanted = true }
        wake()
    }

    /// A message `enqueue` just made durable, with the lock it took: started by the manager of
    /// this process without a scan (a process that does not deliver leaves it to the scans).
    func handOff(_ entry: QueueEntry, _ held: EntryLock) {
        let taken: Bool = lock.withLock {
            guard running && !stopped else { return false }
            handedOff.append((entry, held))
            return true
        }
        if taken { wake() } else { held.release() }
    }

    private func loop() async {
        var lastScan = -Double.infinity
        while !lock.withLock({ stopped }) {
            let rescan: Bool = lock.withLock {
                wakePending = false
                defer { rescanWanted = false }
                return rescanWanted
            }
            startHandedOff()
            let now = ProcessInfo.processInfo.systemUptime
            if rescan || now - lastScan >= settings.scanInterval {
                scan()
                lastScan = now
            }
            // Sleep until the next scan is due, or until an enqueue or a finished attempt wakes us.
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let (again, arm): (Bool, Bool) = lock.withLock {
                    if wakePending || stopped { return (true, false) }
                    wakeUp = c
                    defer { timerArmed = true }
                    return (false, !timerArmed)
                }
                if again {
                    c.resume()
                    return
                }
                guard arm else { return }
                let interval = max(0.01, lastScan + settings.scanInterval - ProcessInfo.processInfo.systemUptime)
                Task.detached { [weak self] in
                    try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                    guard let self else { return }
                    self.lock.withLock { self.timerArmed = false }
                    self.wake()
                }
            }
        }
    }

    /// Starts the handed-over entries there is room for; the rest wait, locked, for a finished
    /// attempt to make room.
    private func startHandedOff() {
        let ready: [(entry: QueueEntry, held: EntryLock)] = lock.withLock {
            let room = max(0, settings.concurrency - inFlight.count)
            let ready = Array(handedOff.prefix(room))
            handedOff.removeFirst(ready.count)
            for r in ready { inFlight.insert(r.entry.id) }
            return ready
        }
        for (entry, held) in ready {
            do {
                try spool.move(entry.id, from: "incoming", to: "active")
            } catch {
                // Still in `incoming/`: the next scan takes it.
                logger.error("cannot activate queue entry: \(error)", metadata: ["id": "\(entry.id)"])
                lock.withLock { _ = inFlight.remove(entry.id) }
                held.release()
                continue
            }
            launch(entry, held)
        }
    }

    /// Picks due entries: incoming ones, deferred ones whose time has come, and active ones whose
    /// owner died (their data file is not locked).
    private func scan() {
        let now = Self.now()
        var candidates: [(id: String, queue: String)] = []
        for queue in ["active", "incoming", "deferred"] {
            for id in spool.ids(in: queue) {
                if queue == "deferred", let entry = spool.read(id, in: queue), entry.nextAttempt > now { continue }
                candidates.append((id, queue))
            }
        }
        for (id, listedIn) in candidates {
            let busy: Bool = lock.withLock {
                if stopped { return true }
                if inFlight.count >= settings.concurrency {
                    leftBehind = true
                    return true
                }
                return inFlight.contains(id)
            }
            if busy { continue }
            guard let held = spool.lock(id) else { continue }
            // Under the lock the entry cannot move; re-read where it is now.
            guard let (queue, entry) = spool.locate(id) else {
                // Entries are written whole before their lock is let go: one still unreadable
                // under the lock was torn by a crash before its 250, or damaged.
                if access(spool.entryPath(id, in: listedIn), F_OK) == 0 {
                    logger.error("unreadable queue entry set aside in corrupt/", metadata: ["id": "\(id)", "queue": "\(listedIn)"])
                    spool.setAside(id, in: listedIn)
                }
                held.release()
                continue
            }
            if queue == "hold" { held.release(); continue }
            if queue == "deferred" && entry.nextAttempt > now { held.release(); continue }
            if queue == "active" { logger.warning("taking over an entry left active by a process that stopped", metadata: ["id": "\(id)"]) }
            do {
                if queue != "active" { try spool.move(id, from: queue, to: "active") }
            } catch {
                logger.error("cannot activate queue entry: \(error)", metadata: ["id": "\(id)"])
                held.release()
                continue
            }
            lock.withLock { _ = inFlight.insert(id) }
            launch(entry, held)
        }
    }

    /// Runs one attempt (`id` is already in `inFlight`); its end makes room for entries waiting.
    private func launch(_ entry: QueueEntry, _ held: EntryLock) {
        Task.detached { [self] in
            await self.attempt(entry, held)
            let more: Bool = self.lock.withLock {
                self.inFlight.remove(entry.id)
                if self.leftBehind {
                    self.leftBehind = false
                    self.rescanWanted = true
                }
                return self.rescanWanted || !self.handedOff.isEmpty
            }
            if more { self.wake() }
        }
    }
}
