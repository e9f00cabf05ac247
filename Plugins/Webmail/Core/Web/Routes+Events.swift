import Foundation
import PluginAPI
import PluginHTTP

/// Live new-mail updates as server-sent events, for `static/app.js` (the pages work without
/// them). The stream asks IMAP for the folder's STATUS every few seconds and says when it
/// changes; it ends after a minute and the browser's EventSource reconnects, so a stream never
/// holds a draining worker for long and works against any IMAP server.
extension Webmail {
    static let eventInterval: UInt64 = 5_000_000_000
    static let eventStreamLifetime: Double = 55

    func addEventRoutes(_ router: Router<WebmailRequestContext>) {
        router.get("/events") { request, context -> Response in
            guard let user = try self.signedIn(request) else { return Response(status: .unauthorized) }
            let folder = request.uri.queryParameters["f"].map(String.init) ?? "INBOX"
            let mail = try await self.mail(user, context)
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
                var last: (messages: Int, unseen: Int, uidNext: Int)?
                let end = Date().addingTimeInterval(Self.eventStreamLifetime)
                while Date() < end {
                    let now = try await mail.status(folder)
                    if let before = last, now != before {
                        let event = "event: mail\ndata: {\"messages\":\(now.messages),\"unseen\":\(now.unseen),\"new\":\(now.uidNext > before.uidNext)}\n\n"
                        try await writer.write(ByteBuffer(string: event))
                    }
                    last = now
                    try await Task.sleep(nanoseconds: Self.eventInterval)
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
        }
    }
}
