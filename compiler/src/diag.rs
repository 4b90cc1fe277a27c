//! Diagnostics are data: a severity, a stable code, a primary span with a
//! label, a help line, and optional related spans. They are accumulated, never
//! "stop at the first". Rendering (miette, JSON) is done by the caller through
//! [`Diagnostic::render`] and [`Diagnostic::to_json`].

use crate::source::{FileId, SourceFile, Span};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $sev:ident, $title:literal; )*) => {
        /// Every diagnostic the compiler can emit. Codes are stable: never
        /// renumber, only add. docs/LANGUAGE.md has a bad and a fixed example of each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }
            /// A one-line description, for documentation and `--explain`-style listings.
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }
        }
    };
}

codes! {
    Syntax = "V0001", Error, "syntax error";
    BadLiteral = "V0002", Error, "invalid literal";
    UnresolvedImport = "V0101", Error, "import cannot be resolved";
    ImportCycle = "V0102", Error, "import cycle";
    DuplicateImport = "V0103", Error, "two imports use the same namespace";
    UnknownNode = "V0110", Error, "unknown node";
    DuplicateNode = "V0111", Error, "duplicate node";
    DuplicateFlow = "V0112", Error, "duplicate flow";
    UnknownModule = "V0113", Error, "unknown module";
    DuplicateModule = "V0114", Error, "duplicate module";
    UnknownProfile = "V0115", Error, "unknown time profile";
    DuplicateProfile = "V0116", Error, "duplicate time profile";
    UnknownVariable = "V0117", Error, "unknown variable";
    DuplicateVariable = "V0118", Error, "duplicate variable";
    UnknownFunction = "V0119", Error, "unknown function";
    UnknownAction = "V0120", Error, "unknown action";
    ReservedName = "V0121", Error, "reserved name";
    UnknownType = "V0122", Error, "unknown type";
    UnknownStartKind = "V0123", Error, "unknown start point kind";
    UnknownParam = "V0201", Error, "unknown action parameter";
    MissingParam = "V0202", Error, "missing required parameter";
    DuplicateParam = "V0203", Error, "parameter given twice";
    UnknownResult = "V0204", Error, "unknown result";
    DuplicateResult = "V0205", Error, "result connected twice";
    BadMenuKey = "V0206", Error, "invalid menu key sequence";
    BadParamValue = "V0207", Error, "invalid parameter value";
    ReturnOutsideModule = "V0208", Error, "`return` outside a module";
    UnknownExit = "V0209", Error, "unknown module exit";
    WrongArity = "V0210", Error, "wrong number of function arguments";
    TypeMismatch = "V0301", Error, "type mismatch";
    ReadOnlyWrite = "V0302", Error, "write to a read-only variable";
    ModuleArgs = "V0303", Error, "wrong module arguments";
    PromptNotFound = "V0401", Error, "prompt file not found";
    DuplicateStartPoint = "V0402", Error, "start point claimed twice";
    TransferNotAllowed = "V0403", Error, "transfer target not allowed";
    BadTransferPattern = "V0404", Error, "invalid allow_transfer pattern";
    BadProfile = "V0405", Error, "invalid time profile";
    PureCycle = "V0501", Error, "loop that never waits for the caller";
    Unreachable = "V0502", Warning, "unreachable node";
    Unconnected = "V0503", Warning, "unconnected result ends the call";
    NoStartPoint = "V0504", Warning, "flow has no start point";
    EmptyBody = "V0505", Error, "flow or module without nodes";
    UnusedExit = "V0506", Warning, "module exit never returned";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secondary place that explains the primary one ("first defined here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub file: FileId,
    pub span: Span,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub file: FileId,
    pub span: Span,
    pub label: String,
    pub help: String,
    pub related: Vec<Related>,
}

impl Diagnostic {
    /// A diagnostic with the code's own severity.
    pub fn new(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            file,
            span,
            label: String::new(),
            help: String::new(),
            related: Vec::new(),
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = help.into();
        self
    }
    pub fn related(mut self, file: FileId, span: Span, label: impl Into<String>) -> Diagnostic {
        self.related.push(Related {
            file,
            span,
            label: label.into(),
        });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders as a miette report. `files` resolves related spans in other files.
    pub fn render<'a>(
        &self,
        file: &SourceFile,
        other: impl Fn(FileId) -> Option<&'a SourceFile>,
        color: bool,
    ) -> String {
        use miette::{GraphicalReportHandler, GraphicalTheme};
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let mut help = self.help.clone();
        // miette labels live in one source; related spans elsewhere become notes.
        for r in self.related.iter().filter(|r| r.file != self.file) {
            if let Some(f) = other(r.file) {
                let (line, col) = f.line_col(r.span.start);
                help.push_str(&format!("\nnote: {} at {}:{line}:{col}", r.label, f.name));
            }
        }
        let report = Rendered {
            diag: self,
            source: file,
            help,
        };
        let mut out = String::new();
        GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .render_report(&mut out, &report)
            .expect("rendering to a String cannot fail");
        out
    }

    /// One JSON object, the `--format json` shape of `vflow check`.
    pub fn to_json(&self, file: &SourceFile) -> serde_json::Value {
        let (line, column) = file.line_col(self.span.start);
        let (end_line, end_column) = file.line_col(self.span.end);
        serde_json::json!({
            "file": file.name,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "code": self.code.as_str(),
            "severity": self.severity.as_str(),
            "message": self.message,
            "label": self.label,
            "help": self.help,
        })
    }
}

struct Rendered<'a> {
    diag: &'a Diagnostic,
    source: &'a SourceFile,
    help: String,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}
impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}
impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code.as_str()))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        (!self.help.is_empty()).then(|| Box::new(&self.help) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let len = self.source.text.len();
        let clamp = move |s: Span| {
            let start = (s.start as usize).min(len);
            let end = (s.end as usize).clamp(start, len);
            miette::SourceSpan::from((start, end - start))
        };
        let primary = miette::LabeledSpan::new_primary_with_span(
            (!self.diag.label.is_empty()).then(|| self.diag.label.clone()),
            clamp(self.diag.span),
        );
        let related = self
            .diag
            .related
            .iter()
            .filter(|r| r.file == self.diag.file)
            .map(move |r| miette::LabeledSpan::new_with_span(Some(r.label.clone()), clamp(r.span)));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

impl miette::SourceCode for Rendered<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let inner =
            self.source
                .text
                .as_ref()
                .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.source.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// An accumulator of diagnostics for one file at a time.
#[derive(Debug, Default)]
pub struct Sink {
    pub diags: Vec<Diagnostic>,
}

impl Sink {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}
