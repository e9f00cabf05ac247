import Prometheus

/// The process-wide metrics registry. The host bootstraps swift-metrics with it once per process;
/// plugins create `Counter`/`Gauge`/`Timer` through swift-metrics as usual and their values show up
/// on `/metrics`.
public enum PosternMetrics {
    private static let registry = PrometheusCollectorRegistry()
    private static let once = NIOLockedValueBox(false)

    /// Installs the Prometheus backend for swift-metrics. Safe to call more than once.
    public static func bootstrap() {
        once.withLockedValue { done in
            guard !done else { return }
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.defaultDurationHistogramBuckets = [
                .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
                .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
            ]
            MetricsSystem.bootstrap(factory)
            done = true
        }
    }

    /// This process's metrics in the Prometheus text exposition format.
    public static func exposition() -> String {
        registry.emitToString()
    }
}
