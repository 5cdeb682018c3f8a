//! Claims-matching expressions, language version 1:
//!
//! ```text
//! expr    := clause ( "and" clause )*
//! clause  := "claims[" quoted "]" ( "matches" | "eq" ) operand
//! operand := quoted | bare word (no spaces)
//! quoted  := '...'  (a quote inside is written \' and a backslash \\)
//! ```
//! `matches` takes a glob (`*` any run, `?` one character); `eq` compares exactly.
//! Keywords are case-insensitive; claim names and values are case-sensitive.
//! Expressions are compiled when a credential is written, so a bad one is refused
//! with the position of the error instead of silently never matching.

use serde_json::Value;

use crate::glob::{GlobRules, glob_matches};

/// Claim values compare exactly: `*` and `?` are the only wildcards.
const CLAIM_GLOB: GlobRules = GlobRules {
    single: true,
    ignore_case: false,
};

/// Longest expression accepted.
pub const MAX_EXPRESSION_LEN: usize = 2048;

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Glob match.
    Matches,
    /// Exact equality.
    Eq,
}

/// One `claims['name'] op 'value'` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Claim name.
    pub claim: String,
    /// Operator.
    pub op: Op,
    /// Pattern or value.
    pub value: String,
}

/// A compiled expression: all clauses must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    /// The clauses, joined by `and`.
    pub clauses: Vec<Clause>,
}

/// A syntax error with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid claims-matching expression at position {pos}: {message}")]
pub struct ExpressionError {
    /// Byte offset of the problem.
    pub pos: usize,
    /// What was expected.
    pub message: String,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExpressionError> {
        Err(ExpressionError {
            pos: self.pos,
            message: message.into(),
        })
    }
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }
    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }
    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        let r = self.rest();
        if r.len() >= token.len()
            && r.get(..token.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(token))
        {
            self.pos += token.len();
            true
        } else {
            false
        }
    }
    fn keyword(&mut self, word: &str) -> bool {
        let save = self.pos;
        if self.eat(word) {
            // A keyword must end at a word boundary.
            if self
                .rest()
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == '\'')
            {
                return true;
            }
        }
        self.pos = save;
        false
    }
    fn quoted(&mut self) -> Result<String, ExpressionError> {
        self.skip_ws();
        if !self.rest().starts_with('\'') {
            return self.err("expected a quoted string");
        }
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('\'' | '\\'))) => out.push(e),
                    _ => {
                        self.pos += i;
                        return self.err("only \\' and \\\\ may be escaped");
                    }
                },
                c => out.push(c),
            }
        }
        self.pos = start;
        self.err("unterminated quoted string")
    }
    fn operand(&mut self) -> Result<String, ExpressionError> {
        self.skip_ws();
        if self.rest().starts_with('\'') {
            return self.quoted();
        }
        let word: String = self
            .rest()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        if word.is_empty() {
            return self.err("expected a value after the operator");
        }
        self.pos += word.len();
        Ok(word)
    }
    fn clause(&mut self) -> Result<Clause, ExpressionError> {
        if !self.eat("claims[") {
            return self.err("expected claims['<name>']");
        }
        let claim = self.quoted()?;
        if claim.is_empty() {
            return self.err("the claim name is empty");
        }
        if !self.eat("]") {
            return self.err("expected ']' after the claim name");
        }
        let op = if self.keyword("matches") {
            Op::Matches
        } else if self.keyword("eq") {
            Op::Eq
        } else {
            return self.err("expected 'matches' or 'eq'");
        };
        let value = self.operand()?;
        Ok(Clause { claim, op, value })
    }
}

impl Expression {
    /// Compiles an expression.
    pub fn parse(src: &str) -> Result<Expression, ExpressionError> {
        if src.len() > MAX_EXPRESSION_LEN {
            return Err(ExpressionError {
                pos: MAX_EXPRESSION_LEN,
                message: format!("longer than {MAX_EXPRESSION_LEN} bytes"),
            });
        }
        let mut p = Parser { src, pos: 0 };
        let mut clauses = vec![p.clause()?];
        loop {
            p.skip_ws();
            if p.rest().is_empty() {
                break;
            }
            if !p.keyword("and") {
                return p.err("expected 'and' or the end of the expression");
            }
            clauses.push(p.clause()?);
        }
        Ok(Expression { clauses })
    }

    /// The first clause that fails for `claims`, or `None` when all hold. A claim that
    /// is absent or not a string fails (an array of strings holds if any element does).
    pub fn first_failure<'a>(
        &'a self,
        claims: &serde_json::Map<String, Value>,
    ) -> Option<&'a Clause> {
        self.clauses.iter().find(|c| !c.holds(claims))
    }
}

impl Clause {
    /// Whether the clause holds for `claims`.
    pub fn holds(&self, claims: &serde_json::Map<String, Value>) -> bool {
        let test = |v: &str| match self.op {
            Op::Eq => v == self.value,
            Op::Matches => glob_matches(self.value.as_bytes(), v.as_bytes(), CLAIM_GLOB),
        };
        match claims.get(&self.claim) {
            Some(Value::String(s)) => test(s),
            Some(Value::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(test)),
            _ => false,
        }
    }
}

impl std::fmt::Display for Clause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::Matches => "matches",
            Op::Eq => "eq",
        };
        write!(f, "claims['{}'] {op} '{}'", self.claim, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_and_matches() -> Result<(), ExpressionError> {
        let e = Expression::parse(
            "claims['sub'] matches 'repo:org/*:ref:refs/heads/*' and claims['aud'] eq api://AzureADTokenExchange",
        )?;
        assert_eq!(e.clauses.len(), 2);
        let ok = claims(
            json!({"sub": "repo:org/app:ref:refs/heads/main", "aud": ["api://AzureADTokenExchange"]}),
        );
        assert!(e.first_failure(&ok).is_none());
        let bad = claims(
            json!({"sub": "repo:other/app:ref:refs/heads/main", "aud": "api://AzureADTokenExchange"}),
        );
        assert_eq!(e.first_failure(&bad).map(|c| c.claim.as_str()), Some("sub"));
        let e = Expression::parse("CLAIMS['x'] MATCHES 'a?c'")?;
        assert!(e.first_failure(&claims(json!({"x": "abc"}))).is_none());
        assert!(e.first_failure(&claims(json!({"x": "abbc"}))).is_some());
        assert!(e.first_failure(&claims(json!({"x": 5}))).is_some());
        let e = Expression::parse(r"claims['n'] eq 'it\'s'")?;
        assert!(e.first_failure(&claims(json!({"n": "it's"}))).is_none());
        Ok(())
    }

    #[test]
    fn reports_errors_with_positions() {
        for (src, pos) in [
            ("", 0),
            ("claims['sub'] like 'x'", 13),
            ("claims['sub' matches 'x'", 13),
            ("claims['sub'] matches 'x' or claims['a'] eq 'b'", 26),
            ("claims['sub'] matches 'unterminated", 22),
            ("claims[''] eq 'x'", 9),
            ("claims['sub'] eq", 16),
        ] {
            match Expression::parse(src) {
                Err(e) => assert_eq!(e.pos, pos, "{src}: {e}"),
                Ok(x) => panic!("{src} parsed as {x:?}"),
            }
        }
        assert!(Expression::parse(&"claims['a'] eq 'b' and ".repeat(200)).is_err());
    }

    #[test]
    fn glob_is_not_exponential() {
        let p = "*a".repeat(40);
        let s = "a".repeat(39);
        assert!(!glob_matches(p.as_bytes(), s.as_bytes(), CLAIM_GLOB));
    }
}
