import Foundation
import PluginAPI

// DATA and BDAT, the spool file, the end-of-message filters and the hand-over to the queue (in
// LMTP mode, to the store: +LMTP).
extension SMTPServerState {
    func data() -> [SMTPOutput] {
        guard let t = transaction else { return reply(503, "5.5.1", isLMTP ? "MAIL first" : "need MAIL command") }
        if t.usedBDAT { return reply(503, "5.5.1", "DATA after BDAT") }
        guard !t.recipients.isEmpty else { return reply(isLMTP ? 503 : 554, "5.5.1", "no valid recipients") }
        if t.body == "BINARYMIME" { return reply(503, "5.5.1", "BODY=BINARYMIME needs BDAT") }
        guard openSpool() else { return reply(451, "4.3.0", "cannot spool the message") }
        phase = .data(DotStuffedReader(maxSize: options.maxMessageSize))
        return reply(354, nil, isLMTP ? "send the message, end with <CRLF>.<CRLF>" : "end data with <CR><LF>.<CR><LF>")
    }

    func bdat(size: Int, last: Bool) async -> [SMTPOutput] {
        // The chunk is read whatever the answer, so its octets are never taken for commands.
        var refusal: MailReply?
        if transaction == nil {
            refusal = MailReply(503, "5.5.1", "need MAIL command")
        } else if !extended {
            // CHUNKING is an extension (RFC 3030): a HELO client has not been offered it.
            refusal = MailReply(503, "5.5.1", "BDAT needs EHLO")
        } else if transaction!.recipients.isEmpty {
            refusal = MailReply(554, "5.5.1", "no valid recipients")
        } else if transaction!.spool == nil && !openSpool() {
            refusal = MailReply(451, "4.3.0", "cannot spool the message")
        }
        transaction?.usedBDAT = true
        chunkSize = size
        guard size > 0 else { return await endOfChunk(last: last, refusal: refusal, size: 0) }
        phase = .chunk(remaining: size, last: last, refusal: refusal)
        return []
    }

    func endOfChunk(last: Bool, refusal: MailReply?, size: Int) async -> [SMTPOutput] {
        if let refusal { return [.reply(refusal)] }
        guard let t = transaction else { return reply(503, "5.5.1", "need MAIL command") }
        if t.tooBig {
            env.metrics.messagesRefused.increment()
            await resetTransaction()
            return reply(552, "5.3.4", "message exceeds fixed limit of \(options.maxMessageSize) bytes")
        }
        if t.spool?.failed == true {
            env.logger.error("spool write failed")
            await resetTransaction()
            return reply(451, "4.3.0", "cannot spool the message")
        }
        guard last else { return reply(250, "2.0.0", "\(size) octets received") }
        return await endOfMessage()
    }

    func endOfData(_ reader: DotStuffedReader) async -> [SMTPOutput] {
        if reader.tooBig && isLMTP {
            // RFC 2033 §4.2: after DATA, one reply per accepted recipient, refusals included.
            let refusals = perRecipient(MailReply(552, "5.3.4", "message exceeds \(options.maxMessageSize) bytes"))
            await resetTransaction()
            return refusals
        }
        if reader.tooBig {
            env.metrics.messagesRefused.increment()
            await resetTransaction()
            return reply(552, "5.3.4", "message exceeds fixed limit of \(options.maxMessageSize) bytes")
        }
        if reader.sawBareLineFeed && options.bareLineFeed == .reject {
            env.metrics.messagesRefused.increment()
            await resetTransaction()
            return reply(550, "5.6.0", "message contains bare LF line ends; lines end with CRLF")
        }
        if transaction?.spool?.failed == true {
            env.logger.error("spool write failed")
            await resetTransaction()
            return reply(451, "4.3.0", "cannot spool the message")
        }
        return await endOfMessage()
    }

    /// Writes the Received: field that starts the spool file and sets the reader up. LMTP stores
    /// the message as received: the MTA that hands it over has added its trace fields.
    func openSpool() -> Bool {
        guard var t = transaction else { return false }
        do {
            let spool = try SpoolFile(directory: env.spoolDirectory, name: t.id)
            if isLMTP {
                t.spool = spool
                transaction = t
                return true
            }
            let protocolName = ReceivedField.protocolName(extended: extended, secure: client.isSecure,
                                                          authenticated: authenticatedUser != nil, utf8: t.smtpUTF8)
            spool.write(ReceivedField.make(helo: heloName ?? "unknown", clientHostname: clientHostname, clientAddress: client.address,
                                           hostname: env.hostname, protocolName: protocolName, id: t.id,
                                           recipient: t.recipients.count == 1 ? t.recipients[0].address : nil,
                                           date: MailDate(secondsSince1970: env.now())))
            t.spool = spool
            transaction = t
            return true
        } catch {
            env.logger.error("cannot open spool file: \(error)")
            return false
        }
    }

    // MARK: - End of message

    func endOfMessage() async -> [SMTPOutput] {
        guard var t = transaction, let spool = t.spool else { return reply(503, "5.5.1", "need MAIL command") }
        spool.close()
        let queue: any MailQueue
        switch env.dialect {
        case .lmtp(let store): return await deliverToStore(store, spool)
        case .smtp(_, let smtpQueue): queue = smtpQueue
        }
        var verdictQuarantine = t.quarantine ?? quarantineAll
        var addedMessages: [MessageEdits.AddedMessage] = []
        var folder: String?
        if let filters = filterTransaction {
            let (outcome, edits) = await runMessageFilters(filters, path: spool.path)
            switch outcome {
            case .reject(let r):
                env.metrics.messagesRefused.increment()
                env.logger.info("message refused by a filter", metadata: ["id": "\(t.id)", "reply": "\(permanent(r))"])
                await filters.abort()
                await finishTransaction(spool)
                return [.reply(permanent(r))]
            case .tempfail(let r):
                env.metrics.messagesRefused.increment()
                env.logger.info("message refused by a filter", metadata: ["id": "\(t.id)", "reply": "\(temporary(r))"])
                await filters.abort()
                await finishTransaction(spool)
                return [.reply(temporary(r))]
            case .discard: t.discard = true
            case .quarantine(let reason): verdictQuarantine = reason
            case .continue, .accept: break
            }
            for conflict in edits.conflicts {
                env.logger.warning("filter change dropped: an earlier filter changed the same thing", metadata: ["change": "\(conflict)"])
            }
            if !t.discard {
                let received = t.recipients.map(\.address)
                let kept = edits.recipients(from: received)
                if kept != received {
                    t.recipients = kept.map { a in t.recipients.first(where: { $0.address == a }) ?? EnvelopeRecipient(address: a) }
                }
                if let sender = edits.sender { t.sender = sender }
                if t.recipients.isEmpty { t.discard = true }
                addedMessages = edits.addedMessages
                folder = edits.folder
                do {
                    if edits.changesContent { try rewrite(spool.path, edits) }
                } catch {
                    env.logger.error("cannot apply filter changes: \(error)")
                    await finishTransaction(spool)
                    return reply(451, "4.3.0", "cannot apply filter changes")
                }
            }
        }
        if t.discard || discardAll {
            env.metrics.messagesDiscarded.increment()
            env.logger.info("message discarded", metadata: ["id": "\(t.id)", "from": "\(t.sender)", "recipients": "\(t.recipients.count)"])
            await finishTransaction(spool)
            return reply(250, "2.0.0", "ok: discarded")
        }
        let envelope = Envelope(sender: t.sender, recipients: t.recipients, body: t.body, smtpUTF8: t.smtpUTF8,
                                dsnReturn: t.dsnReturn, envelopeID: t.envelopeID, folder: folder)
        var info = stat()
        let size = stat(spool.path, &info) == 0 ? Int(info.st_size) : 0
        // The filters' further messages (archive copies) go first: a crash between them and the
        // message leaves a copy of a message the client was never told was accepted (and sends
        // again), never an accepted message without its copy.
        for added in addedMessages {
            do {
                let copyID = try await enqueueAdded(added, queue: queue, transactionID: t.id)
                env.logger.info("filter copy queued", metadata: ["id": "\(t.id)", "queue_id": "\(copyID)",
                                                                 "recipients": "\(added.recipients.count)"])
            } catch {
                env.logger.error("queue refused a filter's copy", metadata: ["id": "\(t.id)", "error": "\(error)"])
                env.metrics.messagesRefused.increment()
                await finishTransaction(spool)
                return reply(451, "4.3.0", "temporary queue failure, try again later")
            }
        }
        do {
            // Quarantine: accepted (the sender is not told, as with Postfix's HOLD) and kept in
            // the hold queue until an administrator releases or deletes it.
            let queueID = try await queue.enqueue(envelope: envelope, messagePath: spool.path, holdReason: verdictQuarantine)
            env.metrics.messagesAccepted.increment()
            env.events?.record(MailEvent(time: env.now(), kind: verdictQuarantine == nil ? .received : .quarantined, listener: env.listenerName,
                                         queueID: queueID, sender: t.sender, recipients: t.recipients.map(\.address), size: size,
                                         client: client.address?.description, reason: verdictQuarantine,
                                         filter: verdictQuarantine == nil ? nil : filterTransaction?.takeDecidingFilter()))
            env.logger.info(verdictQuarantine == nil ? "message queued" : "message quarantined",
                            metadata: ["id": "\(t.id)", "queue_id": "\(queueID)", "from": "<\(t.sender)>",
                                       "recipients": "\(t.recipients.count)", "size": "\(size)",
                                       "user": "\(authenticatedUser ?? "-")", "reason": "\(verdictQuarantine ?? "-")"])
            transaction = nil
            return reply(250, "2.0.0", "ok: queued as \(queueID)")
        } catch {
            env.logger.error("queue refused the message", metadata: ["id": "\(t.id)", "error": "\(error)"])
            env.metrics.messagesRefused.increment()
            await finishTransaction(spool)
            return reply(451, "4.3.0", "temporary queue failure, try again later")
        }
    }

    /// Writes a filter's further message to a spool file of its own and queues it.
    func enqueueAdded(_ added: MessageEdits.AddedMessage, queue: any MailQueue, transactionID: String) async throws -> String {
        let spool = try SpoolFile(directory: env.spoolDirectory, name: transactionID + "-copy")
        spool.write(added.content)
        spool.close()
        guard !spool.failed else {
            spool.discard()
            throw POSIXError(.EIO)
        }
        let envelope = Envelope(sender: added.sender, recipients: added.recipients.map { EnvelopeRecipient(address: $0) })
        do {
            return try await queue.enqueue(envelope: envelope, messagePath: spool.path, holdReason: nil)
        } catch {
            spool.discard()
            throw error
        }
    }

    /// Headers, body and end-of-message stages over the spooled message. The body is read once,
    /// chunk by chunk, and each chunk goes to every filter at once.
    func runMessageFilters(_ filters: FilterChainTransaction, path: String) async -> (FilterVerdict, MessageEdits) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return (.tempfail(MailReply(451, "4.3.0", "cannot read the message")), MessageEdits()) }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 1 << 20))
        let section = HeaderSection(parsing: head)
        let fields = section.unfolded
        let raw = section.rawValues
        let refusing = FilterVerdict.tempfail(MailReply(451, nil, "")).severity
        var verdict = await filters.run(.headers, { await $0.headers(fields, raw: raw) })
        if verdict.severity >= refusing { return (verdict, MessageEdits()) }
        try? handle.seek(toOffset: UInt64(section.bodyOffset))
        while true {
            let chunk = [UInt8](handle.readData(ofLength: 1 << 16))
            if chunk.isEmpty { break }
            let v = await filters.run(.body, { await $0.body(chunk) })
            verdict = FilterChain.combine([verdict, v])
            if verdict.severity >= refusing { return (verdict, MessageEdits()) }
        }
        let (final, byFilter) = await filters.endOfMessageByFilter()
        return (FilterChain.combine([verdict, final]), MessageEdits(merging: byFilter))
    }

    /// Applies the merged header changes and a replaced body by writing a new file over the spool file.
    func rewrite(_ path: String, _ edits: MessageEdits) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw POSIXError(.EIO) }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 1 << 20))
        var section = HeaderSection(parsing: head)
        section.apply(edits)
        let temporary = path + ".rewrite"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(section.encoded)),
              let out = FileHandle(forWritingAtPath: temporary) else { throw POSIXError(.EIO) }
        defer { try? out.close() }
        try out.seekToEnd()
        if edits.changesBody {
            // Range edits (MIMERewrite's part changes) apply to the body as received, read whole:
            // a filter that asked for them had it in memory too.
            try handle.seek(toOffset: UInt64(section.bodyOffset))
            let received = edits.body == nil ? [UInt8](handle.readDataToEndOfFile()) : []
            try out.write(contentsOf: edits.body(from: received))
        } else {
            try handle.seek(toOffset: UInt64(section.bodyOffset))
            while true {
                let chunk = handle.readData(ofLength: 1 << 16)
                if chunk.isEmpty { break }
                try out.write(contentsOf: chunk)
            }
        }
        guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    func finishTransaction(_ spool: SpoolFile) async {
        spool.discard()
        transaction = nil
    }

    func resetTransaction() async {
        guard let t = transaction else { return }
        t.spool?.discard()
        transaction = nil
        if let filters = filterTransaction { await filters.abort() }
    }

    func abortTransaction() {
        transaction?.spool?.discard()
        transaction = nil
    }
}
