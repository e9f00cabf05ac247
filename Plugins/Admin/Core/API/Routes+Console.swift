import Foundation
import PluginAPI
import PluginHTTP

/// The console's page and files, and the OpenAPI document, read once from the plugin's resources.
struct ConsoleFiles: Sendable {
    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    let files: [String: (type: String, bytes: [UInt8])]

    init() throws {
        guard let resources = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            throw ConsoleFiles.Missing(description: "the admin console's resources (Postern_PosternAdminCore.resources) are not beside the postern binary")
        }
        let types = ["html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
                     "json": "application/json", "svg": "image/svg+xml"]
        var files: [String: (String, [UInt8])] = [:]
        for (name, path) in [("index.html", "console/index.html"), ("console.js", "console/console.js"), ("console.css", "console/console.css"),
                             ("openapi.json", "openapi.json")] {
            guard let data = FileManager.default.contents(atPath: resources.appendingPathComponent(path).path) else {
                throw ConsoleFiles.Missing(description: "the admin console's file \(path) is missing from \(resources.path)")
            }
            files[name] = (types[String(name.split(separator: ".").last!)]!, Array(data))
        }
        self.files = files
    }

    func response(_ name: String) -> Response {
        guard let file = files[name] else { return Response(status: .notFound) }
        return Response(status: .ok, headers: [.contentType: file.type], body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}

extension AdminAPI {
    func addConsoleRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/openapi.json", .open) { _ in self.console.response("openapi.json") }
        route(router, .get, "/", .open) { _ in self.console.response("index.html") }
        route(router, .get, "/console/{file}", .open) { call in self.console.response(try call.parameter("file")) }
    }
}
