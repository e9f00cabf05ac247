import Foundation

/// A report's buckets as an SVG line chart, drawn here (no script, no remote font or library):
/// one line per count, a legend, the largest value on the y axis and the first and last bucket's
/// times under the x axis.
enum ReportChart {
    static let series: [(name: String, color: String)] = [
        ("received", "#1d4f91"), ("delivered", "#2b7a0b"), ("deferred", "#c77700"), ("bounced", "#a4161a"),
        ("rejected", "#6b2d8c"), ("quarantined", "#555555"),
    ]

    static func svg(_ report: MailReport, width: Int = 800, height: Int = 300) -> String {
        let left = 50.0, right = 130.0, top = 20.0, bottom = 40.0
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom
        let values: [String: [Int]] = Dictionary(uniqueKeysWithValues: series.map { s in
            (s.name, report.buckets.map { b in
                switch s.name {
                case "received": return b.counts.received
                case "delivered": return b.counts.delivered
                case "deferred": return b.counts.deferred
                case "bounced": return b.counts.bounced
                case "rejected": return b.counts.rejected
                default: return b.counts.quarantined
                }
            })
        })
        let maximum = max(1, values.values.flatMap { $0 }.max() ?? 1)
        let n = max(1, report.buckets.count - 1)
        func x(_ i: Int) -> Double { left + plotWidth * Double(i) / Double(n) }
        func y(_ v: Int) -> Double { top + plotHeight * (1 - Double(v) / Double(maximum)) }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
            font-family="sans-serif" font-size="12" role="img" aria-label="Mail per \(report.bucketSeconds == 3600 ? "hour" : "day")">
            <rect x="0" y="0" width="\(width)" height="\(height)" fill="#ffffff"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(top + plotHeight)" stroke="#999"/>
            <line x1="\(left)" y1="\(top + plotHeight)" x2="\(left + plotWidth)" y2="\(top + plotHeight)" stroke="#999"/>
            <text x="\(left - 6)" y="\(top + 4)" text-anchor="end">\(maximum)</text>
            <text x="\(left - 6)" y="\(top + plotHeight + 4)" text-anchor="end">0</text>

            """
        if let first = report.buckets.first, let last = report.buckets.last {
            out += "<text x=\"\(left)\" y=\"\(top + plotHeight + 18)\">\(label(first.start, report.bucketSeconds))</text>\n"
            out += "<text x=\"\(left + plotWidth)\" y=\"\(top + plotHeight + 18)\" text-anchor=\"end\">\(label(last.start, report.bucketSeconds))</text>\n"
        }
        for (index, s) in series.enumerated() {
            let points = (values[s.name] ?? []).enumerated().map { i, v in String(format: "%.1f,%.1f", x(i), y(v)) }.joined(separator: " ")
            if !points.isEmpty {
                out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(points)\"><title>\(s.name)</title></polyline>\n"
            }
            let ly = top + 14 + Double(index) * 18
            out += "<rect x=\"\(left + plotWidth + 12)\" y=\"\(ly - 9)\" width=\"10\" height=\"10\" fill=\"\(s.color)\"/>"
            out += "<text x=\"\(left + plotWidth + 26)\" y=\"\(ly)\">\(s.name) \(report.totals.values[MailReport.Counts.columns.firstIndex(of: s.name)!])</text>\n"
        }
        return out + "</svg>\n"
    }

    /// `2026-12-07 14:00` (hours) or `2026-12-07` (days), UTC.
    static func label(_ time: Int64, _ bucket: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = bucket < 86_400 ? "yyyy-MM-dd HH:mm" : "yyyy-MM-dd"
        return formatter.string(from: Date(timeIntervalSince1970: Double(time)))
    }
}
