import PluginAPI

/// A `multipart/form-data` body (RFC 7578), read with PluginAPI's MIME parser: the form is a
/// multipart whose parts are named by `Content-Disposition: form-data; name=...`.
struct FormData: Sendable, Equatable {
    struct File: Sendable, Equatable {
        var field: String
        var filename: String
        var mimeType: String
        var data: [UInt8]
    }

    var fields: [String: String] = [:]
    var files: [File] = []

    /// Parses a body given the request's Content-Type (which carries the boundary); nil when it
    /// is not multipart/form-data with a boundary.
    init?(contentType: String, body: [UInt8]) {
        guard let type = MIMEContentType.parse(Array(contentType.utf8)), type.mimeType == "multipart/form-data",
              type.boundary != nil else { return nil }
        let message = MIMEMessage(parsing: Array("Content-Type: \(contentType)\r\n\r\n".utf8) + body)
        let offset = ("Content-Type: \(contentType)\r\n\r\n").utf8.count
        for part in message.root.children {
            guard let disposition = part.contentDisposition, disposition.value.lowercased() == "form-data",
                  let name = disposition.parameters.value(of: "name") else { continue }
            let start = part.bodyOffset - offset, end = start + part.bodySize
            guard start >= 0, end <= body.count else { continue }
            let data = Array(body[start..<end])
            if let filename = disposition.filename {
                // An empty file input sends a part with an empty filename: nothing was chosen.
                if filename.isEmpty && data.isEmpty { continue }
                files.append(File(field: name, filename: filename, mimeType: part.explicitContentType?.mimeType ?? "application/octet-stream", data: data))
            } else {
                fields[name] = String(decoding: data, as: UTF8.self)
            }
        }
    }
}
