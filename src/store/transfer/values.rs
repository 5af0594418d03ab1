//! The values rows travel as when a database moves ([`Value`]), and the column kind and value
//! of the Rust types a row is declared with ([`ColumnValue`]); written to either engine.

use super::Kind::{self, Bool, Int, Text};

/// A Rust type's column kind and value, for the tables whose rows are declared with their
/// struct (messages).
pub trait ColumnValue {
    const KIND: Kind;
    fn value(&self) -> Value;
}

impl ColumnValue for i64 {
    const KIND: Kind = Int;
    fn value(&self) -> Value {
        Value::Int(*self)
    }
}

impl ColumnValue for bool {
    const KIND: Kind = Bool;
    fn value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl ColumnValue for String {
    const KIND: Kind = Text;
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ColumnValue for crate::clock::Timestamp {
    const KIND: Kind = Int;
    fn value(&self) -> Value {
        Value::Int(self.micros())
    }
}

impl<T: ColumnValue> ColumnValue for Option<T> {
    const KIND: Kind = T::KIND;
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ColumnValue::value)
    }
}

/// One column value of any table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Value {
        value.map_or(Value::Null, Value::Int)
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Value {
        value.map_or(Value::Null, Value::Text)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V};
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(V::Null),
            Value::Int(i) => ToSqlOutput::from(*i),
            Value::Bool(b) => ToSqlOutput::from(*b),
            Value::Text(t) => ToSqlOutput::from(t.as_str()),
            Value::Blob(b) => ToSqlOutput::from(b.as_slice()),
        })
    }
}

impl tokio_postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(tokio_postgres::types::IsNull::Yes),
            Value::Int(i) => i.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Text(t) => t.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        use tokio_postgres::types::Type;
        [
            Type::INT8,
            Type::BOOL,
            Type::TEXT,
            Type::VARCHAR,
            Type::BYTEA,
        ]
        .contains(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}
