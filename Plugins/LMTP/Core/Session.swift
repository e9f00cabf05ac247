import Foundation
import PluginAPI

/// One LMTP connection. Commands are read line by line from the raw stream (so the bytes after
/// `DATA` go to the DATA reader, not the line splitter); commands that ask the store (RCPT, the
/// end of DATA) pause the reading of pipelined input until the store answers, so replies keep
/// their order (RFC 2920).
// @unchecked Sendable: ChannelHandler confined to its channel's event loop; store tasks hop back via NIOLoopBound to touch state
final class LMTPSession: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let plugin: LMTPPlugin
    private let session: Session
    private let store: any StorageBackend
    private let options: LMTPOptions

    private var input: [UInt8] = []
    private var splitter: LineSplitter
    private var reader: DotStuffedReader?
    private var busy = false
    private var closing = false

    private var greeted = false
    private var sender: SMTPPath?
    /// Accepted recipients in RCPT order (LMTP answers each after DATA).
    private var recipients: [String] = []
    private var spoolFile: (fd: CInt, path: String)?

    init(plugin: LMTPPlugin, session: Session, store: any StorageBackend, options: LMTPOptions) {
        self.plugin = plugin
        self.session = session
        self.store = store
        self.options = options
        splitter = LineSplitter(maxLength: options.maxLineLength, bareLineFeed: .accept)
    }

    func channelActive(context: ChannelHandlerContext) {
        reply(context, "220 \(plugin.hostname) LMTP Postern ready")
        context.flush()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        session.onDrain {
            loopBound.eventLoop.execute {
                let (me, ctx) = loopBound.value
                me.closeIfIdle(ctx)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        discardSpool()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        input += buffer.readBytes(length: buffer.readableBytes) ?? []
        process(context)
    }

    private func reply(_ context: ChannelHandlerContext, _ text: String) {
        context.write(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
    }

    private func reply(_ context: ChannelHandlerContext, _ r: MailReply) {
        context.write(wrapOutboundOut(ByteBuffer(string: r.encoded())), promise: nil)
    }

    /// Works through buffered input until it runs out or a command waits for the store.
    private func process(_ context: ChannelHandlerContext) {
        while !busy && !closing && !input.isEmpty {
            if reader != nil {
                consumeData(context)
                continue
            }
            // One line at a time: the bytes after DATA belong to the DATA reader.
            guard let lf = input.firstIndex(of: UInt8(ascii: "\n")) else {
                _ = splitter.feed(input)
                input.removeAll()
                break
            }
            let events = splitter.feed(input[...lf])
            input.removeSubrange(...lf)
            for event in events { handle(event, context) }
        }
        context.flush()
        // A transaction that ended without a delivery (RSET, a refused message) ends the drain too.
        if session.isDraining { closeIfIdle(context) }
    }

    private func handle(_ event: LineSplitter.Event, _ context: ChannelHandlerContext) {
        switch event {
        case .tooLong: reply(context, MailReply(500, "5.5.2", "line too long"))
        case .bareLineFeed: reply(context, MailReply(500, "5.5.2", "bare LF"))
        case .line(let bytes):
            switch SMTPCommandParser.parse(bytes) {
            case .failure(let error): reply(context, error.reply)
            case .success(let command): execute(command, context)
            }
        }
    }

    private func execute(_ command: SMTPCommand, _ context: ChannelHandlerContext) {
        switch command {
        case .lhlo(let name):
            greeted = true
            resetTransaction()
            session.logger.debug("LHLO \(name)")
            reply(context, MailReply(250, nil, [plugin.hostname, "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8",
                                                "SIZE \(options.maxMessageSize)"].joined(separator: "\n")))
        case .helo, .ehlo:
            reply(context, MailReply(500, "5.5.1", "this is LMTP: use LHLO"))
        case .mail(let from, let parameters):
            guard greeted else { return reply(context, MailReply(503, "5.5.1", "LHLO first")) }
            guard sender == nil else { return reply(context, MailReply(503, "5.5.1", "nested MAIL command")) }
            if let size = parameters.first(where: { $0.key == "SIZE" })?.value {
                guard let n = Int(size) else { return reply(context, MailReply(501, "5.5.4", "bad SIZE")) }
                if n > options.maxMessageSize { return reply(context, MailReply(552, "5.3.4", "message too big for this server")) }
            }
            for p in parameters where !["SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH"].contains(p.key) {
                return reply(context, SMTPCommandError.badParameter(p.key).reply)
            }
            sender = from
            reply(context, MailReply(250, "2.1.0", "sender ok"))
        case .rcpt(let to, _):
            guard sender != nil else { return reply(context, MailReply(503, "5.5.1", "MAIL first")) }
            guard recipients.count < options.maxRecipients else { return reply(context, MailReply(452, "4.5.3", "too many recipients")) }
            let address = to.address
            busy = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let store = self.store
            Task {
                let check: Result<RecipientCheck, any Error>
                do { check = .success(try await store.checkRecipient(address)) } catch { check = .failure(error) }
                loopBound.eventLoop.execute {
                    let (me, ctx) = loopBound.value
                    me.busy = false
                    switch check {
                    case .success(.local):
                        me.recipients.append(address)
                        me.reply(ctx, MailReply(250, "2.1.5", "recipient ok"))
                    // The same named refusals as the SMTP server's (RecipientRefusal).
                    case .success(.unknownUser):
                        me.plugin.refusedRecipients.increment()
                        me.reply(ctx, RecipientRefusal.unknownUser.reply(address))
                    case .success(.disabled):
                        me.plugin.refusedRecipients.increment()
                        me.reply(ctx, RecipientRefusal.disabled.reply(address))
                    case .success(.notLocal):
                        me.plugin.refusedRecipients.increment()
                        me.reply(ctx, RecipientRefusal.notLocal.reply(address))
                    case .failure(let error):
                        me.session.logger.error("recipient check failed: \(error)")
                        me.reply(ctx, RecipientRefusal.lookupFailed.reply(address))
                    }
                    me.process(ctx)
                }
            }
        case .data:
            guard sender != nil else { return reply(context, MailReply(503, "5.5.1", "MAIL first")) }
            guard !recipients.isEmpty else { return reply(context, MailReply(503, "5.5.1", "no valid recipients")) }
            do {
                spoolFile = try openSpool()
            } catch {
                session.logger.error("cannot open spool file: \(error)")
                return reply(context, MailReply(451, "4.3.0", "cannot spool the message"))
            }
            reader = DotStuffedReader(maxSize: options.maxMessageSize)
            reply(context, MailReply(354, nil, "send the message, end with <CRLF>.<CRLF>"))
        case .bdat:
            reply(context, MailReply(502, "5.5.1", "BDAT is not offered here"))
        case .rset:
            resetTransaction()
            reply(context, MailReply(250, "2.0.0", "reset"))
        case .noop:
            reply(context, MailReply(250, "2.0.0", "ok"))
        case .quit:
            closing = true
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: MailReply(221, "2.0.0", "bye").encoded()))).whenComplete { _ in
                context.close(promise: nil)
            }
        case .vrfy:
            reply(context, MailReply(252, "2.5.0", "cannot verify, but will try"))
        case .expn:
            reply(context, MailReply(502, "5.5.1", "EXPN is disabled"))
        case .help:
            reply(context, MailReply(214, "2.0.0", "LHLO MAIL RCPT DATA RSET NOOP QUIT"))
        case .startTLS, .auth:
            reply(context, MailReply(502, "5.5.1", "not offered on LMTP"))
        }
    }

    private func consumeData(_ context: ChannelHandlerContext) {
        guard var r = reader else { return }
        let (data, consumed) = r.feed(input)
        input.removeFirst(consumed)
        reader = r
        if !data.isEmpty, let file = spoolFile, !writeAll(file.fd, data) {
            // Disk trouble mid-message: refuse it for every recipient and end the session, since
            // the rest of the message cannot be read back into a sane state.
            reader = nil
            session.logger.error("spool write failed: \(String(cString: strerror(errno)))")
            for _ in recipients { reply(context, MailReply(451, "4.3.0", "cannot spool the message")) }
            resetTransaction()
            closing = true
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: MailReply(421, "4.3.0", "closing").encoded()))).whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        guard r.finished else { return }
        reader = nil
        if r.tooBig {
            for _ in recipients { reply(context, MailReply(552, "5.3.4", "message exceeds \(options.maxMessageSize) bytes")) }
            discardSpool()
            resetTransaction()
            return
        }
        deliver(context)
    }

    private func deliver(_ context: ChannelHandlerContext) {
        guard let file = spoolFile else { return }
        close(file.fd)
        spoolFile = nil
        busy = true
        let recipients = self.recipients, path = file.path, store = self.store
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        Task {
            let outcomes: [RecipientOutcome]
            do {
                outcomes = try await store.deliver(messagePath: path, to: recipients, mailbox: nil)
            } catch {
                outcomes = recipients.map { RecipientOutcome(recipient: $0, status: .deferred, reply: MailReply(451, "4.3.0", "store failure: \(error)")) }
            }
            unlink(path)
            loopBound.eventLoop.execute {
                let (me, ctx) = loopBound.value
                for o in outcomes {
                    (o.status == .delivered ? me.plugin.deliveries : me.plugin.refusedRecipients).increment()
                    me.session.logger.info("delivery", metadata: ["to": "\(o.recipient)", "status": "\(o.status.rawValue)", "reply": "\(o.reply)"])
                    me.reply(ctx, o.reply)
                }
                me.busy = false
                me.resetTransaction()
                me.process(ctx)
                if me.session.isDraining { me.closeIfIdle(ctx) }
            }
        }
    }

    /// On drain, a session between transactions says goodbye (421, RFC 5321 §3.8); one in a
    /// transaction finishes it first.
    private func closeIfIdle(_ context: ChannelHandlerContext) {
        guard !closing, !busy, sender == nil, reader == nil else { return }
        closing = true
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: MailReply(421, "4.3.2", "\(plugin.hostname) shutting down, try again").encoded()))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func resetTransaction() {
        sender = nil
        recipients = []
        discardSpool()
    }

    private func openSpool() throws -> (fd: CInt, path: String) {
        let path = "\(plugin.spool)/\(session.id)-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXErrorCode(rawValue: errno).map { POSIXError($0) } ?? POSIXError(.EIO) }
        return (fd, path)
    }

    private func discardSpool() {
        guard let file = spoolFile else { return }
        close(file.fd)
        unlink(file.path)
        spoolFile = nil
    }

    private func writeAll(_ fd: CInt, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
