import Foundation
import PluginAPI

// One configured milter as a Postern filter: each SMTP connection opens its own connection to the
// milter at the connect stage and maps every filter stage to milter steps (DATA, each header and
// EOH for the header stage; body chunks of at most 65535 octets; EOM with its changes), the
// milter's answers to verdicts and its changes to FilterModifications.

/// A milter's settings (`[plugin.milter.milters.NAME]`).
struct MilterSettings: Sendable {
    enum DefaultAction: String, Sendable, CaseIterable {
        case tempfail, accept, reject
    }

    var name: String
    var address: MilterAddress
    var connectTimeout: Double
    var timeout: Double
    /// What the milter's verdict is when it cannot be reached or breaks the protocol.
    var defaultAction: DefaultAction
}

final class MilterFilter: MailFilter {
    let settings: MilterSettings
    let group: any EventLoopGroup
    let logger: Logger
    /// `postern_milter_failures_total{milter}`: unreachable, timed out or broke the protocol.
    let failures: Counter

    init(settings: MilterSettings, group: any EventLoopGroup, logger: Logger, failures: Counter) {
        self.settings = settings
        self.group = group
        self.logger = logger
        self.failures = failures
    }

    func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction {
        MilterTransaction(filter: self, connection: connection)
    }
}

// @unchecked Sendable: the chain runs one stage of a session at a time and awaits it, so the
// mutable state is never touched by two stages at once; `connection` (set between stages by
// connectionChanged) is under `lock`
final class MilterTransaction: FilterTransaction, @unchecked Sendable {
    private let filter: MilterFilter
    private var settings: MilterSettings { filter.settings }
    private let lock = NIOLock()
    private var _connection: FilterConnection
    private var link: MilterLink?
    /// Set once the milter failed: every later stage gets the default action.
    private var unavailable = false
    /// The milter accepted the whole connection: nothing more is sent but QUIT.
    private var connectionAccepted = false
    /// A MAIL was sent and neither EOM nor ABORT closed it yet.
    private var messageOpen = false

    init(filter: MilterFilter, connection: FilterConnection) {
        self.filter = filter
        _connection = connection
    }

    private var connection: FilterConnection { lock.withLock { _connection } }

    func connectionChanged(_ connection: FilterConnection) {
        lock.withLock { _connection = connection }
    }

    // MARK: Stages

    func connect() async -> FilterVerdict {
        do {
            link = try await MilterLink.open(settings.address, group: filter.group,
                                             connectTimeout: settings.connectTimeout, timeout: settings.timeout)
        } catch {
            return failed("cannot reach the milter", error)
        }
        let c = connection
        let family: MilterFamily = c.peerPort == nil ? .unix : (c.peerAddress.contains(":") ? .inet6 : .inet)
        let step = MilterStep.connect(hostname: c.peerHostname ?? "[\(c.peerAddress)]", family: family,
                                      port: UInt16(clamping: c.peerPort ?? 0), address: c.peerAddress)
        return await run(step, connectionLevel: true)
    }

    func helo(_ name: String) async -> FilterVerdict {
        await run(.helo(name), connectionLevel: true)
    }

    func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict {
        if messageOpen { _ = await send(.abort) }
        messageOpen = true
        let args = ["<\(sender)>"] + parameters.keys.sorted().map { k in parameters[k]!.isEmpty ? k : "\(k)=\(parameters[k]!)" }
        return await run(.mail(args))
    }

    func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict {
        let args = ["<\(recipient)>"] + parameters.keys.sorted().map { k in parameters[k]!.isEmpty ? k : "\(k)=\(parameters[k]!)" }
        return await run(.rcpt(args), macrosFor: recipient)
    }

    func headers(_ fields: [(name: String, value: String)]) async -> FilterVerdict {
        await headers(fields, raw: fields.map { " " + $0.value })
    }

    /// Fields go to the milter as received, folds included, as Sendmail sends them: a DKIM signer
    /// with simple canonicalization must see the bytes that are queued.
    func headers(_ fields: [(name: String, value: String)], raw: [String]) async -> FilterVerdict {
        let data = await run(.data)
        guard data == .continue else { return data }
        for (f, value) in zip(fields, raw) {
            let v = await run(.header(name: f.name, value: value))
            guard v == .continue else { return v }
        }
        return await run(.endOfHeaders)
    }

    func body(_ chunk: [UInt8]) async -> FilterVerdict {
        var offset = 0
        while offset < chunk.count, let link, !link.bodySkipped {
            let end = min(offset + MilterConversation.maxBodyChunk, chunk.count)
            let v = await run(.body(Array(chunk[offset..<end])))
            guard v == .continue else { return v }
            offset = end
        }
        return .continue
    }

    func endOfMessage() async -> (FilterVerdict, [FilterModification]) {
        guard !unavailable, !connectionAccepted, let link else { return (defaultVerdict, []) }
        messageOpen = false
        do {
            guard let answer = try await link.step(.endOfMessage, macros: macros(for: .endOfMessage)) else { return (.continue, []) }
            return MilterVerdictMapping.endOfMessage(answer, leadingSpace: link.negotiatedFlags.contains(.headerLeadingSpace))
        } catch {
            return (failed("milter failed at end of message", error), [])
        }
    }

    func abort() async {
        guard messageOpen else { return }
        messageOpen = false
        _ = await send(.abort)
    }

    func close() async {
        guard let link else { return }
        self.link = nil
        if !unavailable { _ = try? await link.step(.quit) }
        link.close()
    }

    // MARK: Steps

    /// The verdict while the milter is out of the session (unreachable, broken) or accepted it all.
    private var defaultVerdict: FilterVerdict {
        if connectionAccepted { return .continue }
        guard unavailable else { return .continue }
        switch settings.defaultAction {
        case .accept: return .continue
        case .tempfail: return .tempfail(MailReply(451, "4.7.1", "Service unavailable - try again later"))
        case .reject: return .reject(MailReply(550, "5.7.1", "Command rejected"))
        }
    }

    private func failed(_ what: String, _ error: any Error) -> FilterVerdict {
        unavailable = true
        link?.close()
        link = nil
        filter.logger.warning("\(what)", metadata: ["milter": "\(settings.name)", "address": "\(settings.address)",
                                                    "error": "\(error)", "action": "\(settings.defaultAction.rawValue)"])
        filter.failures.increment()
        return defaultVerdict
    }

    /// Sends a step that no answer is awaited for (abort), or whose answer does not matter.
    private func send(_ step: MilterStep) async -> Bool {
        guard !unavailable, !connectionAccepted, let link else { return false }
        do {
            _ = try await link.step(step)
            return true
        } catch {
            _ = failed("milter failed at \(step.name)", error)
            return false
        }
    }

    private func run(_ step: MilterStep, connectionLevel: Bool = false, macrosFor recipient: String? = nil) async -> FilterVerdict {
        guard !unavailable, !connectionAccepted, let link else { return defaultVerdict }
        do {
            let stage = step.macroStage
            let m = stage.map { macros(for: $0, recipient: recipient) } ?? []
            guard let answer = try await link.step(step, macros: m) else { return .continue }
            if connectionLevel && answer.verdict == .accept {
                // ACCEPT at connect or HELO: the milter does not want to see this connection.
                connectionAccepted = true
                return .continue
            }
            return MilterVerdictMapping.verdict(answer.verdict)
        } catch {
            return failed("milter failed at \(step.name)", error)
        }
    }

    /// The Sendmail macros this client knows for a stage (a milter that sent a symbol list gets
    /// only those it named).
    private func macros(for stage: MilterMacroStage, recipient: String? = nil) -> [(name: String, value: String)] {
        let c = connection
        switch stage {
        case .connect:
            return [("j", c.localHostname), ("{daemon_name}", c.listener), ("v", "Postern"),
                    ("_", "\(c.peerHostname ?? "") [\(c.peerAddress)]"), ("{client_addr}", c.peerAddress),
                    ("{client_name}", c.peerHostname ?? "[\(c.peerAddress)]"), ("{client_port}", "\(c.peerPort ?? 0)"),
                    ("{client_ptr}", c.peerHostname ?? "unknown")]
        case .helo:
            return c.isSecure ? [("{tls_version}", "TLS"), ("{cipher}", "TLS")] : []
        case .mail:
            var m: [(String, String)] = [("i", c.transactionID ?? "NOQUEUE"), ("{mail_mailer}", "esmtp")]
            if let user = c.authenticatedUser {
                m += [("{auth_type}", c.authenticationMechanism ?? "PLAIN"), ("{auth_authen}", user)]
            }
            return m
        case .rcpt:
            return [("{rcpt_mailer}", "esmtp")] + (recipient.map { [("{rcpt_addr}", $0)] } ?? [])
        case .data, .endOfHeaders, .endOfMessage:
            return [("i", c.transactionID ?? "NOQUEUE")]
        }
    }
}
