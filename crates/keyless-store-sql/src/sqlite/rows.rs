//! Row → record decoding for SQLite.

use keyless_store::*;
use sqlx::Row;

use crate::error::Result;

pub(super) use crate::row_decoding::json_text;

crate::row_decoding::row_decoders!(sqlx::sqlite::SqliteRow);
