//! The month as a table for a person: one row per provider, sorted by forecast, a total, and
//! notes under it; at most 100 columns (long names cut with `…`); emphasis when `colour`
//! (over budget or a limit, near one, failed).

use std::time::Duration;

use super::human::{self, money, percent};
use super::{Line, Month, NEAR, Status};
use crate::term::{Style, fit};

/// The widest line.
pub(crate) const WIDTH: usize = 100;

/// Provider names are cut to no fewer characters than this to make room.
const MIN_NAME: usize = 8;

/// Nor resource names to fewer than this.
const MIN_RESOURCE: usize = 6;

/// A renewal this close is emphasised (the `RenewalDueSoon` alert's week).
const SOON: Duration = Duration::from_secs(7 * 86_400);

const HEADERS: [&str; 8] = [
    "PROVIDER",
    "STATUS",
    "SPENT",
    "FORECAST",
    "BUDGET",
    "%",
    "CLOSEST TO A LIMIT",
    "NEXT RENEWAL",
];

/// A cell: its text, on which side it is padded, its emphasis.
#[derive(Debug, Clone)]
struct Cell {
    text: String,
    right: bool,
    style: Option<Style>,
}

impl Cell {
    fn left(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            right: false,
            style: None,
        }
    }

    fn right(text: impl Into<String>) -> Cell {
        Cell {
            right: true,
            ..Cell::left(text)
        }
    }

    fn styled(mut self, style: Option<Style>) -> Cell {
        self.style = style;
        self
    }

    fn width(&self) -> usize {
        self.text.chars().count()
    }

    /// Padded to `width` (cut to it first), painted when `colour`.
    fn render(&self, width: usize, colour: bool) -> String {
        let text = fit(&self.text, width);
        let pad = " ".repeat(width.saturating_sub(text.chars().count()));
        let painted = match self.style {
            Some(s) => s.paint(&text, colour),
            None => text,
        };
        if self.right {
            format!("{pad}{painted}")
        } else {
            format!("{painted}{pad}")
        }
    }
}

/// A row: every column, or the provider and one text across the rest.
enum Row {
    Cells(Vec<Cell>),
    Span(Cell, Cell),
}

/// Unknown.
const DASH: &str = "—";

fn amount(d: Option<rust_decimal::Decimal>) -> String {
    d.map_or_else(|| DASH.to_owned(), money)
}

/// Emphasis for a share of a budget or limit: over it, or near it.
fn emphasis(share: Option<f64>, over: bool) -> Option<Style> {
    if over {
        Some(Style::Alarm)
    } else if share.is_some_and(|s| s >= NEAR) {
        Some(Style::Warn)
    } else {
        None
    }
}

/// The parts of the "closest to a limit" column: resource, used of limit, percentage.
struct LimitParts {
    resource: String,
    used: String,
    pct: String,
    style: Option<Style>,
}

fn limit_parts(l: &Line) -> Option<LimitParts> {
    let c = l.closest.as_ref()?;
    let share = c.share();
    Some(LimitParts {
        resource: c.resource.clone(),
        used: human::of(c.used, c.limit, c.unit),
        pct: percent(share),
        style: emphasis(Some(share), share > 1.0),
    })
}

/// The table, ending with a line break.
pub(crate) fn render(m: &Month, colour: bool) -> String {
    let now = time::OffsetDateTime::from(m.now);
    let mut out = format!(
        "{} {} so far (day {} of {}), amounts in {}\n\n",
        now.month(),
        now.year(),
        now.day(),
        now.month().length(now.year()),
        m.currency
    );
    let limits: Vec<Option<LimitParts>> = m.lines.iter().map(limit_parts).collect();
    let mut layout = Layout::of(&limits, m);
    let rows = rows(m, limits, layout.renewal_amount);
    for (row, _) in &rows {
        match row {
            Row::Cells(cells) => {
                for (i, c) in cells.iter().enumerate() {
                    if i != LIMIT {
                        layout.widths[i] = layout.widths[i].max(c.width());
                    }
                }
            }
            Row::Span(name, _) => layout.widths[0] = layout.widths[0].max(name.width()),
        }
    }
    layout.fit();

    let header: Vec<Cell> = HEADERS
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let cell = if (SPENT..=SHARE).contains(&i) {
                Cell::right(*h)
            } else {
                Cell::left(*h)
            };
            cell.styled(Some(Style::Bold))
        })
        .collect();
    let mut lines = vec![layout.line(&header, None, colour)];
    for (row, parts) in &rows {
        lines.push(match row {
            Row::Span(name, text) => {
                let room = WIDTH.saturating_sub(layout.widths[0] + GAP);
                format!(
                    "{}{}{}",
                    name.render(layout.widths[0], colour),
                    " ".repeat(GAP),
                    text.render(room.min(text.width()), colour)
                )
            }
            Row::Cells(cells) => layout.line(cells, parts.as_ref(), colour),
        });
    }
    for line in lines {
        // The last guard: names and spans are cut above; only amounts beyond belief (in the
        // millions, with a limit and a renewal) get here.
        out.push_str(&fit(line.trim_end(), WIDTH));
        out.push('\n');
    }
    let notes = notes(m);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&fit(&n, WIDTH));
            out.push('\n');
        }
    }
    out
}

/// Column indexes.
const SPENT: usize = 2;
const SHARE: usize = 5;
const LIMIT: usize = 6;

/// Between two columns, and between the money columns once space is short.
const GAP: usize = 2;

/// The widths of the columns, of the parts of the composed one, and the gaps.
struct Layout {
    widths: [usize; 8],
    /// After each column.
    gaps: [usize; 7],
    resource: usize,
    used: usize,
    pct: usize,
    renewal_amount: usize,
}

impl Layout {
    fn of(limits: &[Option<LimitParts>], m: &Month) -> Layout {
        let max =
            |f: &dyn Fn(&LimitParts) -> usize| limits.iter().flatten().map(f).max().unwrap_or(0);
        Layout {
            widths: HEADERS.map(|h| h.chars().count()),
            gaps: [GAP; 7],
            resource: max(&|p| p.resource.chars().count()),
            used: max(&|p| p.used.chars().count()),
            pct: max(&|p| p.pct.chars().count()),
            renewal_amount: m
                .lines
                .iter()
                .filter_map(|l| l.renewal.as_ref())
                .map(|n| money(n.amount).chars().count())
                .max()
                .unwrap_or(0),
        }
    }

    /// The composed column's content width: `resource used pct`.
    fn limit(&self) -> usize {
        if self.used == 0 {
            DASH.chars().count()
        } else {
            self.resource + 1 + self.used + 1 + self.pct
        }
    }

    fn total(&self) -> usize {
        let mut widths = self.widths;
        widths[LIMIT] = widths[LIMIT].max(self.limit());
        widths.iter().sum::<usize>() + self.gaps.iter().sum::<usize>()
    }

    /// Cuts names, then narrows the gaps between amounts, until the table fits.
    fn fit(&mut self) {
        while self.total() > WIDTH {
            let name = self.widths[0].saturating_sub(MIN_NAME);
            let resource = if self.limit() > self.widths[LIMIT] {
                self.resource.saturating_sub(MIN_RESOURCE)
            } else {
                0
            };
            if resource > 0 && resource >= name {
                self.resource -= 1;
            } else if name > 0 {
                self.widths[0] -= 1;
            } else if self.gaps[SPENT] > 1 {
                for g in &mut self.gaps[SPENT..SHARE] {
                    *g = 1;
                }
            } else {
                break;
            }
        }
        self.widths[LIMIT] = self.widths[LIMIT].max(self.limit());
    }

    /// One line of cells (the composed column laid out from `parts`).
    fn line(&self, cells: &[Cell], parts: Option<&LimitParts>, colour: bool) -> String {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            match (parts, i) {
                (Some(p), LIMIT) => {
                    let resource = Cell::left(p.resource.clone()).render(self.resource, colour);
                    let used = Cell::right(p.used.clone()).render(self.used, colour);
                    let pct = Cell::right(p.pct.clone())
                        .styled(p.style)
                        .render(self.pct, colour);
                    // Padded by its visible width (the escapes take none).
                    let pad = self.widths[LIMIT].saturating_sub(self.limit());
                    line.push_str(&format!("{resource} {used} {pct}{}", " ".repeat(pad)));
                }
                _ => line.push_str(&c.render(self.widths[i], colour)),
            }
            if let Some(g) = self.gaps.get(i) {
                line.push_str(&" ".repeat(*g));
            }
        }
        line
    }
}

/// The rows: one per provider, then the total.
fn rows(
    m: &Month,
    limits: Vec<Option<LimitParts>>,
    renewal_amount: usize,
) -> Vec<(Row, Option<LimitParts>)> {
    let mut rows = Vec::new();
    for (l, parts) in m.lines.iter().zip(limits) {
        let name = Cell::left(l.name());
        match &l.status {
            Status::Failed(errors) => {
                let what: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.reason, one_line(&e.message)))
                    .collect();
                let text = format!("failed: {}", what.join("; "));
                rows.push((
                    Row::Span(name, Cell::left(text).styled(Some(Style::Alarm))),
                    None,
                ));
            }
            Status::NotConfigured(why) => rows.push((
                Row::Span(
                    name.styled(Some(Style::Dim)),
                    Cell::left(format!("not configured: {}", one_line(why)))
                        .styled(Some(Style::Dim)),
                ),
                None,
            )),
            Status::Ok => {
                let over = l.over_budget() == Some(true);
                let share = l.share();
                let spent_over = matches!((l.spent, l.budget), (Some(s), Some(b)) if s > b);
                let renewal = match &l.renewal {
                    None => Cell::left(DASH),
                    Some(n) => {
                        let soon = n.at.duration_since(m.now).is_ok_and(|left| left <= SOON);
                        Cell::left(format!(
                            "{} {:>renewal_amount$}",
                            human::date(n.at),
                            money(n.amount)
                        ))
                        .styled(soon.then_some(Style::Warn))
                    }
                };
                rows.push((
                    Row::Cells(vec![
                        name,
                        Cell::left("ok"),
                        Cell::right(amount(l.spent)).styled(spent_over.then_some(Style::Alarm)),
                        Cell::right(amount(l.forecast)).styled(over.then_some(Style::Alarm)),
                        Cell::right(amount(l.budget)),
                        Cell::right(share.map_or_else(|| DASH.to_owned(), percent))
                            .styled(emphasis(share, over)),
                        // Laid out from `parts` once the widths are known.
                        Cell::left(DASH),
                        renewal,
                    ]),
                    parts,
                ));
            }
        }
    }
    let t = &m.total;
    let over = t.over_budget() == Some(true);
    rows.push((
        Row::Cells(vec![
            Cell::left("total").styled(Some(Style::Bold)),
            Cell::left(""),
            Cell::right(money(t.spent)).styled(Some(Style::Bold)),
            Cell::right(money(t.forecast)).styled(Some(if over {
                Style::Alarm
            } else {
                Style::Bold
            })),
            Cell::right(amount(t.budget)).styled(Some(Style::Bold)),
            Cell::right(t.share().map_or_else(|| DASH.to_owned(), percent))
                .styled(emphasis(t.share(), over)),
            Cell::left(""),
            Cell::left(""),
        ]),
        None,
    ));
    rows
}

/// What the rows do not say: who is left out of the total, whose figures are `[[fixed]]`
/// entries only.
fn notes(m: &Month) -> Vec<String> {
    let mut out = Vec::new();
    if !m.total.failed.is_empty() {
        out.push(format!(
            "not in the total (failed): {}",
            m.total.failed.join(", ")
        ));
    }
    let mut by_note: Vec<(&str, Vec<String>)> = Vec::new();
    for l in &m.lines {
        if let Some(n) = &l.note {
            match by_note.iter_mut().find(|(k, _)| *k == n.as_str()) {
                Some((_, names)) => names.push(l.name()),
                None => by_note.push((n, vec![l.name()])),
            }
        }
    }
    for (note, names) in by_note {
        out.push(format!("{}: {note}", names.join(", ")));
    }
    out
}

/// A message on one line: control characters as spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, dec, outcome, report};
    use std::time::SystemTime;

    use super::super::{Closest, Failure, Next, month};
    use super::*;
    use crate::cost::Unit;
    use crate::error::{CollectError, Reason};
    use crate::outcome::State;

    fn days_from(now: SystemTime, days: u64) -> SystemTime {
        now + Duration::from_secs(days * 86_400)
    }

    fn sample(now: SystemTime) -> Month {
        let mut near = report(&["1.104"], "21.344");
        near.usage = vec![crate::cost::Usage {
            resource: "characters".into(),
            unit: Unit::Characters,
            value: 81_000.0,
            labels: vec![],
        }];
        near.limits = vec![crate::cost::UsageLimit {
            resource: "characters".into(),
            unit: Unit::Characters,
            value: 100_000.0,
        }];
        near.renewals = vec![crate::outcome::RenewalReport {
            name: "creator".into(),
            at: days_from(now, 3),
            price: dec("21.344"),
            current_price: None,
            automatic: Some(true),
        }];
        let outcomes = vec![
            outcome("near", State::Collected(Box::new(near)), Some("30")),
            outcome(
                "over",
                State::Collected(Box::new(report(&["120"], "120"))),
                Some("100"),
            ),
            outcome(
                "broken",
                State::Failed(vec![CollectError::new(
                    Reason::Http5xx,
                    "500 from x\nsecond line",
                )]),
                Some("10"),
            ),
            outcome("off", State::Unconfigured, Some("15")),
        ];
        month(&outcomes, |_| None, "EUR", now)
    }

    #[test]
    fn plain_text_rows_sorted_by_forecast_with_a_total_and_no_escapes() {
        let text = render(&sample(at(2026, 12, 7)), false);
        let expected = "\
December 2026 so far (day 7 of 31), amounts in EUR

PROVIDER  STATUS   SPENT  FORECAST  BUDGET     %  CLOSEST TO A LIMIT       NEXT RENEWAL
over      ok      120.00    120.00  100.00  120%  —                        —
near      ok        1.10     21.34   30.00   71%  characters 81k/100k 81%  2026-12-10 21.34
broken    failed: http_5xx: 500 from x second line
off       not configured: no credentials
total             121.10    141.34  130.00  108%

not in the total (failed): broken
";
        assert_eq!(text, expected);
    }

    #[test]
    fn colour_marks_over_near_failed_and_soon() {
        let text = render(&sample(at(2026, 12, 7)), true);
        let alarm = "\x1b[1;31m";
        let warn = "\x1b[33m";
        assert!(text.contains(&format!("{alarm}120.00\x1b[0m")), "{text:?}");
        assert!(text.contains(&format!("{alarm}120%\x1b[0m")), "{text:?}");
        assert!(text.contains(&format!("{warn}81%\x1b[0m")), "{text:?}");
        assert!(
            text.contains(&format!("{alarm}failed: http_5xx")),
            "{text:?}"
        );
        assert!(
            text.contains(&format!("{warn}2026-12-10 21.34\x1b[0m")),
            "{text:?}"
        );
        // The same text once the escapes are taken out.
        let plain = regex_free_strip(&text);
        assert_eq!(plain, render(&sample(at(2026, 12, 7)), false));
    }

    /// `text` without ANSI escapes (ESC [ … m).
    fn regex_free_strip(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn crowded(now: SystemTime, amount: &str) -> Month {
        let big = dec(amount);
        let lines = (0..3)
            .map(|i| Line {
                provider: format!("a-provider-with-a-very-long-name-{i}"),
                account: None,
                status: Status::Ok,
                spent: Some(big),
                forecast: Some(big),
                budget: Some(big),
                closest: Some(Closest {
                    resource: "a_resource_with_a_name_far_too_long_for_any_table".into(),
                    unit: Unit::Bytes,
                    used: 85.2e9,
                    limit: 1e11,
                }),
                renewal: Some(Next {
                    name: "x".into(),
                    at: now,
                    amount: big,
                }),
                data_as_of: None,
                note: None,
            })
            .chain(std::iter::once(Line {
                provider: "failing".into(),
                account: None,
                status: Status::Failed(vec![Failure {
                    reason: "decode",
                    message: "x".repeat(300),
                }]),
                spent: None,
                forecast: None,
                budget: None,
                closest: None,
                renewal: None,
                data_as_of: None,
                note: Some("n".repeat(200)),
            }))
            .collect();
        Month {
            now,
            currency: "EUR".into(),
            lines,
            total: super::super::Total {
                spent: big,
                forecast: big,
                budget: None,
                counted: 3,
                failed: vec!["failing".into()],
            },
        }
    }

    #[test]
    fn long_names_are_cut_so_that_the_table_fits_100_columns() {
        let m = crowded(at(2026, 12, 7), "99999.99");
        for colour in [false, true] {
            let text = render(&m, colour);
            for l in text.lines() {
                assert!(crate::term::visible(l) <= WIDTH, "{} columns: {l}", l.len());
            }
        }
        let text = render(&m, false);
        // Names gave way; every figure is whole.
        assert!(text.contains("a-provi…  ok"), "{text}");
        assert!(
            text.contains("… 85.2/100 GB 85%  2026-12-07 99,999.99"),
            "{text}"
        );
        assert!(
            text.contains("failed: decode: xxx") && text.contains("x…"),
            "{text}"
        );
        // Amounts beyond belief are cut at the edge rather than overflow it.
        let text = render(&crowded(at(2026, 12, 7), "123456789012.34"), true);
        assert!(text.contains('…'), "{text}");
        assert!(
            text.lines().all(|l| crate::term::visible(l) <= WIDTH),
            "{text}"
        );
    }
}
