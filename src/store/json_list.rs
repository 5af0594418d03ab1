//! A list kept in one column as the JSON the API shows (a message's reactions, its files): the
//! row carries everything its JSON needs, so a page of messages is one query. NULL reads as
//! empty, and empty is stored as NULL.

use serde::{Serialize, de::DeserializeOwned};

use super::transfer::{ColumnValue, Kind, Value};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct JsonList<T>(pub Vec<T>);

impl<T> Default for JsonList<T> {
    fn default() -> Self {
        JsonList(Vec::new())
    }
}

impl<T: DeserializeOwned> JsonList<T> {
    pub fn parse(text: &str) -> Self {
        serde_json::from_str(text).map(JsonList).unwrap_or_default()
    }
}

impl<T: Serialize> JsonList<T> {
    /// The column's value: the JSON, or NULL when empty.
    pub fn to_column(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| serde_json::to_string(&self.0).unwrap_or_default())
    }
}

impl<T: DeserializeOwned> rusqlite::types::FromSql for JsonList<T> {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value {
            rusqlite::types::ValueRef::Null => Ok(JsonList::default()),
            other => Ok(JsonList::parse(other.as_str()?)),
        }
    }
}

impl<'a, T: DeserializeOwned> tokio_postgres::types::FromSql<'a> for JsonList<T> {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
        Ok(JsonList::parse(text))
    }

    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(JsonList::default())
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&str as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

impl<T: Serialize> ColumnValue for JsonList<T> {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> Value {
        self.to_column().into()
    }
}

impl<T: utoipa::ToSchema> utoipa::PartialSchema for JsonList<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name(T::name()))
            .into()
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for JsonList<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("{}List", T::name()).into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((T::name().into(), T::schema()));
        T::schemas(schemas);
    }
}
