//! Parsing at the boundary: the small value types the rest of the code relies on (a valid
//! username, a password that keeps the rules, a message text) and a collector for request
//! fields that produces Django REST framework shaped errors.

use serde_json::{Map, Value, json};

use crate::error::Error;

pub const USERNAME_MAX: usize = 150;
pub const PASSWORD_MIN: usize = 8;
pub const MESSAGE_TEXT_MAX: usize = 10_000;
pub const CLIENT_ID_MAX: usize = 64;
pub const MESSAGES_PER_BATCH: usize = 100;
pub const IDS_PER_MARK: usize = 1_000;

/// 1–150 characters, letters, digits and `@.+-_` (Django's username rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, String> {
        if raw.is_empty() {
            return Err("This field may not be blank.".into());
        }
        if raw.chars().count() > USERNAME_MAX {
            return Err(format!(
                "Ensure this field has no more than {USERNAME_MAX} characters."
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
        {
            return Err("Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.".into());
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Checks the contract's password rules; every broken rule is one message.
pub fn password_problems(password: &str, username: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if password.chars().count() < PASSWORD_MIN {
        problems.push(format!(
            "This password is too short. It must contain at least {PASSWORD_MIN} characters."
        ));
    }
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_digit()) {
        problems.push("This password is entirely numeric.".into());
    }
    if !username.is_empty() && password.to_lowercase() == username.to_lowercase() {
        problems.push("The password is too similar to the username.".into());
    }
    problems
}

/// A message's text: not blank, at most 10,000 characters, no NUL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(raw: &str) -> Result<MessageText, String> {
        if has_nul(raw) {
            return Err(NUL_NOT_ALLOWED.into());
        }
        match message_text_problem(raw) {
            Some(problem) => Err(problem),
            None => Ok(MessageText(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A reaction: 1 to 32 Unicode code points, no whitespace or control characters (skin tones
/// and joiners are kept exactly: `👍🏽`, `👩‍💻`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emoji(String);

pub const EMOJI_MAX: usize = 32;

impl Emoji {
    pub fn parse(raw: &str) -> Result<Emoji, String> {
        let count = raw.chars().count();
        if count == 0 || count > EMOJI_MAX {
            return Err(format!("A reaction is 1 to {EMOJI_MAX} characters."));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("A reaction may not hold whitespace or control characters.".into());
        }
        Ok(Emoji(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message body: a string, not blank, at most 10,000 characters.
pub fn message_text_problem(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        Some("This field may not be blank.".into())
    } else if text.chars().count() > MESSAGE_TEXT_MAX {
        Some(format!(
            "Ensure this field has no more than {MESSAGE_TEXT_MAX} characters."
        ))
    } else {
        None
    }
}

pub const REQUIRED: &str = "This field is required.";
/// Django REST framework's message for a string holding `\u0000` (PostgreSQL cannot store it,
/// so no backend does).
pub const NUL_NOT_ALLOWED: &str = "Null characters are not allowed.";

/// Whether a string holds a NUL character.
pub fn has_nul(text: &str) -> bool {
    text.contains('\0')
}
pub const NOT_A_STRING: &str = "Not a valid string.";
pub const NOT_AN_INTEGER: &str = "A valid integer is required.";
/// What DRF says of a negative number where the least allowed is 0.
pub const BELOW_ZERO: &str = "Ensure this value is greater than or equal to 0.";
pub const NOT_A_BOOLEAN: &str = "Must be a valid boolean.";

/// A JSON number that is a whole number (`5`, and `5.0` as JSON Schema and Django REST
/// framework both take it) within `i64`; anything else (`5.5`, `"5"`, `true`) is not.
pub fn json_integer(value: &Value) -> Option<i64> {
    // 2^63: every whole f64 below it in magnitude fits in an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|n| n.fract() == 0.0 && n.abs() < LIMIT)
            .map(|n| n as i64)
    })
}

/// DRF's description of a JSON value's type, for "expected a list but got ..." messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Field errors collected over a whole request, so a client learns every problem at once:
/// `{"field": ["message", ...], ...}`.
#[derive(Debug, Default)]
pub struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self.0.entry(field.to_owned()).or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(Value::String(message.into()));
        }
    }

    /// Sets a field's error to an arbitrary value (nested list errors).
    pub fn set(&mut self, field: &str, value: Value) {
        self.0.insert(field.to_owned(), value);
    }

    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(Value::Object(self.0)))
        }
    }
}

/// Reads the fields of one JSON object, collecting the errors of all of them.
pub struct Fields<'a> {
    object: Option<&'a Map<String, Value>>,
    pub errors: FieldErrors,
}

impl<'a> Fields<'a> {
    pub fn new(value: &'a Value) -> Fields<'a> {
        let mut fields = Fields {
            object: value.as_object(),
            errors: FieldErrors::default(),
        };
        if fields.object.is_none() {
            fields.error(
                "non_field_errors",
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    type_name(value)
                ),
            );
        }
        fields
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// The raw value, `None` when absent (a JSON `null` counts as present).
    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        self.object.and_then(|o| o.get(field))
    }

    pub fn required_str(&mut self, field: &str) -> Option<&'a str> {
        match self.raw(field) {
            None if self.object.is_some() => {
                self.error(field, REQUIRED);
                None
            }
            None => None,
            Some(value) => self.string_value(field, value),
        }
    }

    /// Absent or `null` is `None`.
    pub fn optional_str(&mut self, field: &str) -> Option<&'a str> {
        match self.raw(field) {
            None | Some(Value::Null) => None,
            Some(value) => self.string_value(field, value),
        }
    }

    fn string_value(&mut self, field: &str, value: &'a Value) -> Option<&'a str> {
        match value {
            Value::String(s) if has_nul(s) => {
                self.error(field, NUL_NOT_ALLOWED);
                None
            }
            Value::String(s) => Some(s.as_str()),
            Value::Null => {
                self.error(field, "This field may not be null.");
                None
            }
            _ => {
                self.error(field, NOT_A_STRING);
                None
            }
        }
    }

    pub fn optional_bool(&mut self, field: &str) -> Option<bool> {
        match self.raw(field) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.error(field, NOT_A_BOOLEAN);
                None
            }
        }
    }

    /// Absent or `null` is `None`; anything but an integer is an error.
    pub fn optional_id(&mut self, field: &str) -> Option<i64> {
        match self.raw(field) {
            None | Some(Value::Null) => None,
            Some(value) => match json_integer(value) {
                Some(id) => Some(id),
                None => {
                    self.error(field, NOT_AN_INTEGER);
                    None
                }
            },
        }
    }

    pub fn finish(self) -> Result<(), Error> {
        self.errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_djangos_rule() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.l-i+c_e@x").is_ok());
        assert!(Username::parse("Zoë").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("bad name").is_err());
        assert!(Username::parse("semi;colon").is_err());
        assert!(Username::parse(&"a".repeat(150)).is_ok());
        assert!(Username::parse(&"a".repeat(151)).is_err());
    }

    #[test]
    fn whole_numbers_are_integers_however_they_are_written() {
        use serde_json::json;
        for (value, integer) in [
            (json!(5), Some(5)),
            (json!(-3), Some(-3)),
            (json!(5.0), Some(5)),
            (json!(1e3), Some(1000)),
            (json!(5.5), None),
            (json!(1e19), None),
            (json!(-1e19), None),
            (json!("5"), None),
            (json!(true), None),
            (json!(null), None),
        ] {
            assert_eq!(json_integer(&value), integer, "{value}");
        }
    }

    #[test]
    fn password_rules_report_each_broken_rule() {
        assert!(password_problems("correct horse", "alice").is_empty());
        assert_eq!(password_problems("short", "alice").len(), 1);
        assert_eq!(password_problems("1234", "alice").len(), 2);
        assert_eq!(password_problems("12345678", "alice").len(), 1);
        assert_eq!(password_problems("AliceAlice", "alicealice").len(), 1);
    }

    #[test]
    fn emoji_keep_their_modifiers_and_refuse_spaces_and_controls() {
        for good in ["👍", "👍🏽", "👩‍💻", "🇫🇷", "ok", "❤️"] {
            assert_eq!(Emoji::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", " ", "👍 ", "a\tb", "\u{7}", &"x".repeat(33)] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_text_must_be_present_and_bounded() {
        assert_eq!(message_text_problem("hi"), None);
        assert!(message_text_problem("   ").is_some());
        assert!(message_text_problem("").is_some());
        assert_eq!(message_text_problem(&"é".repeat(MESSAGE_TEXT_MAX)), None);
        assert!(message_text_problem(&"é".repeat(MESSAGE_TEXT_MAX + 1)).is_some());
    }

    #[test]
    fn fields_collect_every_error() {
        let body = json!({"user1": 3, "flag": "yes"});
        let mut fields = Fields::new(&body);
        assert_eq!(fields.required_str("user1"), None);
        assert_eq!(fields.required_str("user2"), None);
        assert_eq!(fields.optional_bool("flag"), None);
        let Err(Error::Invalid(errors)) = fields.finish() else {
            panic!("expected validation errors");
        };
        assert_eq!(errors["user1"], json!([NOT_A_STRING]));
        assert_eq!(errors["user2"], json!([REQUIRED]));
        assert_eq!(errors["flag"], json!([NOT_A_BOOLEAN]));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_non_field_error() {
        let body = json!([1, 2]);
        let Err(Error::Invalid(errors)) = Fields::new(&body).finish() else {
            panic!("expected validation errors");
        };
        assert_eq!(
            errors["non_field_errors"],
            json!(["Invalid data. Expected a dictionary, but got list."])
        );
    }
}
