import TernCore
import TernStorage

/// A server-rendered SVG bar chart of an endpoint's successes and failures per bucket (stacked), with a text
/// alternative; its colours come from the page's CSS, so it follows dark mode.
enum HealthChart {
    static let width = 480
    static let height = 120

    /// The SVG markup; every text in it is made here, from numbers and times, so nothing needs escaping.
    static func svg(_ health: EndpointHealth, label: String) -> String {
        let buckets = health.buckets
        guard !buckets.isEmpty else { return "" }
        let highest = max(1, buckets.map { $0.success + $0.failed }.max() ?? 1)
        let slot = Double(Self.width) / Double(buckets.count)
        let barWidth = max(1, slot * 0.8)
        let plot = Double(Self.height - 16)
        var bars = ""
        for (index, bucket) in buckets.enumerated() {
            let x = Double(index) * slot + (slot - barWidth) / 2
            let successHeight = plot * Double(bucket.success) / Double(highest)
            let failedHeight = plot * Double(bucket.failed) / Double(highest)
            let when = health.bucketSeconds == 3_600 ? String(bucket.start.description.prefix(16)) : String(bucket.start.description.prefix(10))
            bars += "<g><title>\(when) UTC: \(bucket.success) delivered, \(bucket.failed) failed</title>"
            bars += Self.rect(x, plot - successHeight, barWidth, successHeight, "ok")
            bars += Self.rect(x, plot - successHeight - failedHeight, barWidth, failedHeight, "bad")
            bars += "</g>"
        }
        let total = buckets.reduce((0, 0)) { ($0.0 + $1.success, $0.1 + $1.failed) }
        let summary =
            "\(label): \(total.0) delivered and \(total.1) failed attempts, busiest \(health.bucketSeconds == 3_600 ? "hour" : "day") \(highest)"
        return """
            <svg class="health-chart" viewBox="0 0 \(Self.width) \(Self.height)" role="img" aria-label="\(summary)" preserveAspectRatio="none">\
            <line class="axis" x1="0" y1="\(Int(plot))" x2="\(Self.width)" y2="\(Int(plot))"/>\(bars)\
            <text class="chart-label" x="0" y="\(Self.height - 2)">\(String(buckets.first!.start.description.prefix(10)))</text>\
            <text class="chart-label" x="\(Self.width)" y="\(Self.height - 2)" text-anchor="end">now</text></svg>
            """
    }

    static func rect(_ x: Double, _ y: Double, _ width: Double, _ height: Double, _ kind: String) -> String {
        guard height > 0 else { return "" }
        return
            #"<rect class="\#(kind)" x="\#(Self.format(x))" y="\#(Self.format(y))" width="\#(Self.format(width))" height="\#(Self.format(height))"/>"#
    }

    static func format(_ value: Double) -> String {
        String((value * 10).rounded() / 10)
    }
}
