//! Export without blocking the pipeline: a finished span goes into a bounded lock-free queue
//! ([`QueueProcessor::on_end`], one `push`); when the queue is full the span is dropped and counted. One task on
//! the gateway's runtime takes the queued spans in batches, every [`EXPORT_INTERVAL`] or as soon as a batch is
//! full, and sends each batch to the collector with the OTLP/HTTP exporter (protobuf body) over hyper-util's
//! client, one attempt within `export_timeout`: a batch the collector refuses or does not take in time is dropped
//! and counted too. Nothing a request does ever waits for the collector.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{watch, Notify};

/// How often queued spans are sent when fewer than a batch are waiting.
pub(crate) const EXPORT_INTERVAL: Duration = Duration::from_millis(500);

/// The most spans sent in one export request.
pub(crate) const MAX_BATCH: usize = 512;

/// Spans exported and dropped since start.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Shared as is with whoever shows it (the metrics endpoint reads the same atomic).
    pub dropped: Arc<AtomicU64>,
    pub exported: AtomicU64,
}

/// The SDK's span processor: finished spans into the queue, or counted as dropped.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    pub queue: Arc<ArrayQueue<SpanData>>,
    pub counters: Arc<Counters>,
    pub wake: Arc<Notify>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        match self.queue.push(span) {
            Ok(()) if self.queue.len() >= MAX_BATCH => self.wake.notify_one(),
            Ok(()) => {}
            Err(_full) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The export task sends what is queued on its own; [`crate::Tracer::shutdown`] sends the rest at the end.
    fn force_flush(&self) -> OTelSdkResult {
        self.wake.notify_one();
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The export task: batches out of the queue until `stop` says so, then what is left.
pub(crate) async fn run<E: SpanExporter>(
    exporter: E,
    queue: Arc<ArrayQueue<SpanData>>,
    counters: Arc<Counters>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    timeout: Duration,
) {
    let mut reachable = true;
    loop {
        let stopping = tokio::select! {
            _ = wake.notified() => false,
            _ = tokio::time::sleep(EXPORT_INTERVAL) => false,
            _ = stop.changed() => true,
        };
        while !queue.is_empty() {
            let batch: Vec<SpanData> = std::iter::from_fn(|| queue.pop()).take(MAX_BATCH).collect();
            let spans = batch.len() as u64;
            // The exporter has its own timeout; this one also bounds a client that ignored it.
            let outcome = tokio::time::timeout(timeout + Duration::from_millis(100), exporter.export(batch)).await;
            match outcome {
                Ok(Ok(())) => {
                    counters.exported.fetch_add(spans, Ordering::Relaxed);
                    if !reachable {
                        reachable = true;
                        tracing::info!(target: "penghubung::trace", "the trace collector takes spans again");
                    }
                }
                Ok(Err(error)) => {
                    counters.dropped.fetch_add(spans, Ordering::Relaxed);
                    if std::mem::replace(&mut reachable, false) {
                        tracing::warn!(target: "penghubung::trace", %error, spans, "the trace collector refused spans; dropping them until it takes them again");
                    }
                }
                Err(_elapsed) => {
                    counters.dropped.fetch_add(spans, Ordering::Relaxed);
                    if std::mem::replace(&mut reachable, false) {
                        tracing::warn!(target: "penghubung::trace", spans, "the trace collector did not answer in time; dropping spans until it does");
                    }
                }
            }
        }
        if stopping {
            return;
        }
    }
}
