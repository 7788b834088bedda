//! The dashboard as one self-contained HTML file: the page with the run's timeline embedded,
//! drawn by the same script, opening offline.

use super::PAGE;
use crate::exec::ExecReport;

/// Where the page takes embedded data from instead of a live stream.
const MARKER: &str = "<!--STRATA-REPORT-->";

/// The report's dashboard as one HTML page (no network needed to open it). Costs serialising
/// the timeline (at most [`SPANS_KEPT`](crate::exec::SPANS_KEPT) spans).
pub fn report_html(report: &ExecReport) -> String {
    let json = serde_json::to_string(&report.timeline).expect("a timeline serialises");
    // Inside a <script>, "</" could close the element early.
    let json = json.replace("</", "<\\/");
    let data = format!("<script>window.STRATA_REPORT = {json};</script>");
    PAGE.replacen(MARKER, &data, 1)
}
