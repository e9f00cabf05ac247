import CSystemZlib

// gzip (RFC 1952) through the system zlib, for the `.xml.gz` attachments of aggregate reports
// (RFC 7489 §7.2.1.1).

enum Gzip {
    /// `bytes` as one gzip member; nil if zlib refuses (out of memory).
    static func compress(_ bytes: [UInt8]) -> [UInt8]? {
        // zlib keeps a pointer back to its z_stream and checks it: the stream needs a fixed address.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // Window bits 15 + 16: a gzip header and trailer instead of zlib's.
        guard deflateInit2_(stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { deflateEnd(stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(bytes.count))) + 64)
        var input = bytes
        let rc = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer -> Int32 in
                stream.pointee.next_in = inBuffer.baseAddress
                stream.pointee.avail_in = uInt(inBuffer.count)
                stream.pointee.next_out = outBuffer.baseAddress
                stream.pointee.avail_out = uInt(outBuffer.count)
                // deflateBound leaves room for everything: one call finishes the stream.
                return deflate(stream, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { return nil }
        return Array(output[0..<Int(stream.pointee.total_out)])
    }
}
