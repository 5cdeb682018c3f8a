//! Row → record decoding for PostgreSQL (the same columns as SQLite; the generated
//! `*_key` columns are not read).

use keyless_store::*;
use sqlx::Row;

use crate::error::Result;

pub(super) use crate::row_decoding::json_text;

crate::row_decoding::row_decoders!(sqlx::postgres::PgRow);
