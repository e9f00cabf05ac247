/// The bytes a client channel receives, handed to an `AsyncStream` that a plugin's request code
/// reads in order (a milter link, a clamd scan); the stream ends when the channel closes or fails.
public final class ByteStreamInboundHandler: ChannelInboundHandler, Sendable {
    public typealias InboundIn = ByteBuffer
    private let continuation: AsyncStream<[UInt8]>.Continuation

    public init(_ continuation: AsyncStream<[UInt8]>.Continuation) {
        self.continuation = continuation
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        continuation.yield(buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    public func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish()
        context.close(promise: nil)
    }
}
