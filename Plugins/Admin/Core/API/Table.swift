import Foundation
import PluginAPI
import PluginHTTP

/// Every list the API returns is a table: JSON pages (`offset`, `limit`) by default, or the
/// whole table as CSV with `?format=csv` (RFC 4180: CRLF line ends, fields with a comma, quote or
/// line break quoted), for the console's "export" links and for spreadsheets.
extension AdminAPI {
    struct Page<Item: Encodable>: Encodable {
        var total: Int
        var offset: Int
        var items: [Item]
    }

    func table<Item: Encodable>(_ call: Call, _ rows: [Item], columns: [String], _ cells: (Item) -> [String]) throws -> Response {
        if call.query("format") == "csv" {
            var text = Self.csvLine(columns)
            for row in rows { text += Self.csvLine(cells(row)) }
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                   .contentDisposition: "attachment; filename=\"postern.csv\""],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let offset = try call.queryInt("offset", default: 0, range: 0...Int(Int32.max))
        let limit = try call.queryInt("limit", default: 100, range: 1...10_000)
        let page = offset >= rows.count ? [] : Array(rows[offset..<min(rows.count, offset + limit)])
        return Self.json(Page(total: rows.count, offset: offset, items: page))
    }

    static func csvLine(_ fields: [String]) -> String {
        fields.map { field in
            // A leading =, +, - or @ would be a formula to a spreadsheet: quoted with a ' first.
            var f = field
            if let first = f.first, "=+-@".contains(first) { f = "'" + f }
            return f.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) || f != field
                ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f
        }.joined(separator: ",") + "\r\n"
    }
}
