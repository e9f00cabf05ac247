import Foundation
import PluginAPI

/// The back end's side of a POP3 login, line by line on the channel's event loop: the greeting,
/// STLS when the back end wants it, `XCLIENT ADDR= PORT=` naming the client (Postern's and
/// Dovecot's POP3 take it from trusted proxies; a refusal is no obstacle), then
/// `AUTH PLAIN user NUL master NUL secret` (RFC 5034 with an initial response).
// @unchecked Sendable: used on its channel's event loop only
final class POP3BackendHandshake: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Step { case greeting, startTLS, xclient, login, done }

    let user: String
    let master: BackendLogin.Credential
    let client: (address: String, port: Int)
    let starttls: NIOSSLContext?
    let host: String
    let promise: EventLoopPromise<String>
    private var step = Step.greeting
    private var buffer: [UInt8] = []

    init(user: String, master: BackendLogin.Credential, client: (address: String, port: Int), starttls: NIOSSLContext?, host: String,
         promise: EventLoopPromise<String>) {
        self.user = user
        self.master = master
        self.client = client
        self.starttls = starttls
        self.host = host
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer += bytes.readBytes(length: bytes.readableBytes) ?? []
        while step != .done, let lf = buffer.firstIndex(of: 0x0A) {
            var line = Array(buffer[0...lf])
            buffer.removeFirst(lf + 1)
            while line.last == 0x0A || line.last == 0x0D { line.removeLast() }
            handle(String(decoding: line, as: UTF8.self), context)
        }
        if buffer.count > 64 * 1024 { fail(.unavailable("the back end sent an over-long line"), context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if step != .done { promise.fail(BackendLogin.Failure.unavailable("the back end closed the connection during login")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.unavailable("\(error)"), context)
    }

    private func fail(_ failure: BackendLogin.Failure, _ context: ChannelHandlerContext) {
        guard step != .done else { return }
        step = .done
        promise.fail(failure)
        context.close(promise: nil)
    }

    private func send(_ line: String, _ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line + "\r\n")), promise: nil)
    }

    private func sendXCLIENT(_ context: ChannelHandlerContext) {
        step = .xclient
        send("XCLIENT ADDR=\(client.address) PORT=\(client.port)", context)
    }

    private func handle(_ line: String, _ context: ChannelHandlerContext) {
        switch step {
        case .greeting:
            guard line.hasPrefix("+OK") else { return fail(.unavailable("unexpected greeting: \(line)"), context) }
            if starttls != nil {
                step = .startTLS
                send("STLS", context)
            } else {
                sendXCLIENT(context)
            }
        case .startTLS:
            guard line.hasPrefix("+OK"), let tls = starttls,
                  let handler = try? NIOSSLClientHandler(context: tls, serverHostname: BackendHandshake.sniName(host)) else {
                return fail(.unavailable("STLS refused: \(line)"), context)
            }
            do {
                try context.pipeline.syncOperations.addHandler(handler, position: .first)
            } catch {
                return fail(.unavailable("STLS failed: \(error)"), context)
            }
            sendXCLIENT(context)
        case .xclient:
            // +OK or -ERR: a back end that does not take XCLIENT still takes the login.
            step = .login
            let plain = Data((user + "\u{0}" + master.user + "\u{0}" + master.password).utf8).base64EncodedString()
            send("AUTH PLAIN \(plain)", context)
        case .login:
            guard line.hasPrefix("+OK") else { return fail(.refused(line), context) }
            step = .done
            promise.succeed("")
        case .done:
            break
        }
    }
}
