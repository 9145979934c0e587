//! The terminal: whether colour is wanted on a stream, how wide a line may be, and the few
//! ANSI styles the table and the progress line use.
//!
//! Colour is on only when the stream is a terminal, `NO_COLOR` is unset or empty
//! (<https://no-color.org>) and `TERM` is not `dumb`; piped or redirected output is plain
//! text.

/// Whether to colour a stream: `is_terminal` (the stream is one), no `NO_COLOR`, and a
/// terminal that understands escapes.
pub(crate) fn colour(is_terminal: bool) -> bool {
    is_terminal && !no_color() && capable()
}

/// `NO_COLOR` set to anything but the empty string.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether the terminal can move the cursor and clear a line: anything but `TERM=dumb`.
pub(crate) fn capable() -> bool {
    std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// The terminal's width in columns: `COLUMNS` when a shell exports it, else 80.
pub(crate) fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| (20..=1000).contains(w))
        .unwrap_or(80)
}

/// An emphasis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Headers and totals.
    Bold,
    /// Over a budget or a limit, failed.
    Alarm,
    /// Near a budget or a limit.
    Warn,
    /// Less important: not configured.
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "\x1b[1m",
            Style::Alarm => "\x1b[1;31m",
            Style::Warn => "\x1b[33m",
            Style::Dim => "\x1b[2m",
        }
    }

    /// `text` in this style when `on`, else as is.
    pub(crate) fn paint(self, text: &str, on: bool) -> String {
        if on && !text.is_empty() {
            format!("{}{text}\x1b[0m", self.code())
        } else {
            text.to_owned()
        }
    }
}

/// How many columns `text` takes: its characters, ANSI escapes (`ESC [ … m`) not counted.
pub(crate) fn visible(text: &str) -> usize {
    let mut n = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|d| *d == 'm');
        } else {
            n += 1;
        }
    }
    n
}

/// `text` cut to at most `width` columns, its end replaced with `…` when cut. Escapes are
/// kept and take no column; a cut text that had any ends with a reset.
pub(crate) fn fit(text: &str, width: usize) -> String {
    if visible(text) <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut styled = false;
    let mut n = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            styled = true;
            out.push(c);
            for d in chars.by_ref() {
                out.push(d);
                if d == 'm' {
                    break;
                }
            }
            continue;
        }
        if n + 1 >= width {
            break;
        }
        out.push(c);
        n += 1;
    }
    if width > 0 {
        out.push('…');
    }
    if styled {
        out.push_str("\x1b[0m");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_with_an_ellipsis_to_the_width() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdefg", 6), "abcde…");
        assert_eq!(fit("été en août", 5).chars().count(), 5);
        assert_eq!(fit("abc", 0), "");
        // Escapes take no column and survive the cut, with a reset at the end.
        let red = Style::Alarm.paint("abcdef", true);
        assert_eq!(visible(&red), 6);
        assert_eq!(fit(&red, 6), red);
        assert_eq!(fit(&red, 4), "\x1b[1;31mabc…\x1b[0m");
        assert_eq!(visible(&fit(&red, 4)), 4);
    }

    #[test]
    fn a_style_is_only_painted_when_on() {
        assert_eq!(Style::Alarm.paint("x", false), "x");
        assert_eq!(Style::Alarm.paint("x", true), "\x1b[1;31mx\x1b[0m");
        assert_eq!(Style::Bold.paint("", true), "");
    }
}
