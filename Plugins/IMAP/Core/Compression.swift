import CSystemZlib
import PluginAPI

/// COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (RFC 1951, no zlib header) in both directions, put
/// between TLS and the IMAP handler once the server's OK has gone out. Each write is flushed with
/// Z_SYNC_FLUSH so every response reaches the client whole at once.
///
/// Decompression is bounded: one read that inflates to more than `maxInflatedPerRead` bytes
/// closes the connection (a few kilobytes of zeros can inflate to gigabytes). The bound is well
/// above anything a client needs per read, and the session's own limits (line, literal, APPEND)
/// still apply to what comes out.
final class DeflateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let maxInflatedPerRead: Int
    // zlib keeps a pointer back to its z_stream, so each lives at a fixed address.
    private let inflater = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let deflater = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let ready: Bool

    init(maxInflatedPerRead: Int) {
        self.maxInflatedPerRead = maxInflatedPerRead
        inflater.initialize(to: z_stream())
        deflater.initialize(to: z_stream())
        let size = Int32(MemoryLayout<z_stream>.size)
        // Negative window bits: raw DEFLATE, as RFC 4978 §4 requires.
        let inflateOK = inflateInit2_(inflater, -15, zlibVersion(), size) == Z_OK
        let deflateOK = deflateInit2_(deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), size) == Z_OK
        ready = inflateOK && deflateOK
    }

    deinit {
        inflateEnd(inflater)
        deflateEnd(deflater)
        inflater.deallocate()
        deflater.deallocate()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if !ready { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        var chunks: [[UInt8]] = []
        var total = 0
        let healthy = input.withUnsafeMutableReadableBytes { raw -> Bool in
            guard let base = raw.baseAddress, raw.count > 0 else { return true }
            inflater.pointee.next_in = base.assumingMemoryBound(to: Bytef.self)
            inflater.pointee.avail_in = uInt(raw.count)
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let rc = chunk.withUnsafeMutableBytes { out -> Int32 in
                    inflater.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    inflater.pointee.avail_out = uInt(out.count)
                    return inflate(inflater, Z_SYNC_FLUSH)
                }
                let produced = chunk.count - Int(inflater.pointee.avail_out)
                if produced > 0 {
                    chunks.append(Array(chunk[0..<produced]))
                    total += produced
                }
                // The end of the stream, a corrupt stream, or too much from one read: stop.
                if rc == Z_STREAM_END || (rc != Z_OK && rc != Z_BUF_ERROR) || total > maxInflatedPerRead { return false }
                if inflater.pointee.avail_in == 0 && inflater.pointee.avail_out > 0 { return true }
                if rc == Z_BUF_ERROR && produced == 0 { return true }
            }
        }
        inflater.pointee.next_in = nil
        for c in chunks { context.fireChannelRead(wrapInboundOut(ByteBuffer(bytes: c))) }
        if !healthy { context.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var input = unwrapOutboundIn(data)
        guard input.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        var output = context.channel.allocator.buffer(capacity: input.readableBytes / 2 + 64)
        input.withUnsafeMutableReadableBytes { raw in
            deflater.pointee.next_in = raw.baseAddress!.assumingMemoryBound(to: Bytef.self)
            deflater.pointee.avail_in = uInt(raw.count)
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            repeat {
                _ = chunk.withUnsafeMutableBytes { out -> Int32 in
                    deflater.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    deflater.pointee.avail_out = uInt(out.count)
                    return deflate(deflater, Z_SYNC_FLUSH)
                }
                output.writeBytes(chunk[0..<(chunk.count - Int(deflater.pointee.avail_out))])
            } while deflater.pointee.avail_out == 0
        }
        deflater.pointee.next_in = nil
        context.write(wrapOutboundOut(output), promise: promise)
    }
}
