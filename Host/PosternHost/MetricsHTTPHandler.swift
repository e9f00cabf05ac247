import Foundation
import PluginAPI

/// `GET /metrics` in the Prometheus text format; anything else is 404.
// @unchecked Sendable: ChannelHandler: NIO calls it only on its channel's event loop, the only place `path` is touched
final class MetricsHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let master: Master
    private var path = ""

    init(master: Master) { self.master = master }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): path = head.uri
        case .body: break
        case .end:
            let channel = context.channel
            if path == "/metrics" || path.hasPrefix("/metrics?") {
                master.metrics().whenComplete { result in
                    let body = (try? result.get()) ?? ""
                    Self.respond(channel, status: .ok, contentType: "text/plain; version=0.0.4", body: body)
                }
            } else {
                Self.respond(channel, status: .notFound, contentType: "text/plain", body: "not found: try /metrics\n")
            }
        }
    }

    static func respond(_ channel: any Channel, status: HTTPResponseStatus, contentType: String, body: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
    }
}
