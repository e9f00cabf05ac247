// HTTP for plugins whose listeners speak it (webmail, admin). Hummingbird lives in this image,
// beside NIO, so that every HTTP plugin shares one copy of both (see ARCHITECTURE.md, "Plugins").
@_exported import Hummingbird
@_exported import HummingbirdCore
@_exported import HTTPTypes
import PluginAPI

/// Serves a Hummingbird responder on a connection the host accepted. The host owns listening,
/// TLS and draining; Hummingbird's `Application` would own a server of its own, so this runs
/// Hummingbird's HTTP/1.1 channel handler on the host's channel instead.
public struct HostedHTTP<Responder: HTTPResponder>: Sendable
where Responder.Context: RequestContext, Responder.Context.Source == ApplicationRequestContextSource {
    let responder: Responder
    let configuration: HTTP1Channel.Configuration
    /// Added to every response (security headers, a server name); a response's own value wins.
    let defaultHeaders: HTTPFields

    public init(responder: Responder, idleTimeout: Duration = .seconds(60),
                maxHeaderSize: Int = 64 * 1024, defaultHeaders: HTTPFields = [:]) {
        self.responder = responder
        var limits = HTTP1Channel.Configuration.DecoderConfiguration()
        limits.maxHeaderListSize = maxHeaderSize
        limits.maxHeaderFieldSize = maxHeaderSize
        configuration = HTTP1Channel.Configuration(idleTimeout: .nanoseconds(Int64(idleTimeout.components.seconds) * 1_000_000_000),
                                                   httpDecoderConfiguration: limits)
        self.defaultHeaders = defaultHeaders
    }

    /// Sets up `channel` (called by a protocol service's `startSession`, on the channel's loop)
    /// and serves requests on it until the client or a drain closes it.
    public func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        let responder = self.responder, defaults = defaultHeaders, logger = session.logger
        let http = HTTP1Channel(responder: { request, writer, channel in
            let context = Responder.Context(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as any HTTPResponseError {
                response = try error.response(from: request, context: context)
            } catch {
                logger.error("HTTP handler failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                response = Response(status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"],
                                    body: .init(byteBuffer: ByteBuffer(string: "Internal error: the server log has the details.\n")))
            }
            for field in defaults where response.headers[field.name] == nil {
                response.headers.append(field)
            }
            try await writer.write(response: response.head, body: response.body)
        }, configuration: configuration)
        return http.setup(channel: channel, logger: logger).map { value in
            // A drain closes idle keep-alive connections and ends busy ones after their response.
            session.onDrain {
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
            Task { await http.handle(value: value, logger: logger) }
        }
    }
}
