//! What the library reports through `tracing`, printed on stderr as the command line always
//! printed it: `runretry serve: ...` from the service, `runretry: warning: ...` for a warning
//! from anywhere else. Only runretry's own events, at `info` and above.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Install the subscriber (once, at start).
pub(crate) fn install() {
    let lines = tracing_subscriber::fmt::layer().event_format(Lines).with_writer(std::io::stderr);
    let _ =
        tracing_subscriber::registry().with(lines).with(Targets::new().with_target("runretry", Level::INFO)).try_init();
}

/// One line per event: a prefix that says where it came from, then the message.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        // The service is a crate of its own: its events' targets are `runretry_serve::...`.
        let prefix = if metadata.target().starts_with("runretry_serve") {
            "runretry serve: "
        } else {
            match *metadata.level() {
                Level::ERROR => "runretry: error: ",
                Level::WARN => "runretry: warning: ",
                _ => "runretry: ",
            }
        };
        writer.write_str(prefix)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
